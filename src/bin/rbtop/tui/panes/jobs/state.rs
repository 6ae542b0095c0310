//! The jobs pane's state: the jobs launched from the dashboard (shared with
//! the tasks that run them) and which row is selected, a job or one of its
//! derivations. Rows are re-read from the jobs after each change, so a
//! derivation that appears mid-build gets its row.

use std::time::Duration;

use crate::tui::scroll::offset_showing;
use rbtop::jobs::job::JobId;
use rbtop::jobs::launch::{BuildTool, Placement};
use rbtop::jobs::runner::{DEFAULT_STALL_AFTER, SharedJob, lock};

/// A row of the pane: a job, or (with `drv`) one of its derivations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub job: JobId,
    /// Index into the job's `progress.derivations()`.
    pub drv: Option<usize>,
}

/// What launching and showing jobs take from the settings.
#[derive(Clone, Debug)]
pub struct JobDefaults {
    /// "Let Nix choose": the fleet rbtop shows.
    pub fleet: Placement,
    pub tool: BuildTool,
    /// A running job quiet for longer shows as stalled; so does a remote
    /// build that used no CPU for as long.
    pub stall_after: Duration,
    /// An upload lock held longer is flagged.
    pub upload_lock_after: Duration,
}

impl Default for JobDefaults {
    fn default() -> JobDefaults {
        JobDefaults {
            fleet: Placement::Fleet { builders: None },
            tool: BuildTool::default(),
            stall_after: DEFAULT_STALL_AFTER,
            upload_lock_after: crate::config::DEFAULT_UPLOAD_LOCK_AFTER,
        }
    }
}

#[derive(Default)]
pub struct JobsPane {
    /// In launch order.
    pub list: Vec<SharedJob>,
    pub selected: Option<JobRow>,
    /// The first row on screen.
    pub offset: usize,
    /// Rows that fit, as the last frame measured.
    pub page: usize,
    pub defaults: JobDefaults,
    rows: Vec<JobRow>,
}

impl JobsPane {
    pub fn new(defaults: JobDefaults) -> JobsPane {
        JobsPane {
            page: 5,
            defaults,
            ..JobsPane::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn rows(&self) -> &[JobRow] {
        &self.rows
    }

    /// Add a job just launched and select it.
    pub fn add(&mut self, job: SharedJob) {
        let id = lock(&job).id;
        self.list.push(job);
        self.refresh();
        self.select(JobRow { job: id, drv: None });
    }

    pub fn find(&self, id: JobId) -> Option<&SharedJob> {
        self.list.iter().find(|job| lock(job).id == id)
    }

    pub fn any_active(&self) -> bool {
        self.list.iter().any(|job| lock(job).is_active())
    }

    /// Re-read the rows: one per job, then one per derivation under it.
    pub fn refresh(&mut self) {
        self.rows.clear();
        for job in &self.list {
            let job = lock(job);
            self.rows.push(JobRow {
                job: job.id,
                drv: None,
            });
            let derivations = job.progress.derivations().len();
            self.rows.extend((0..derivations).map(|i| JobRow {
                job: job.id,
                drv: Some(i),
            }));
        }
        if self.selected_row().is_none() {
            self.selected = self.rows.first().copied();
        }
        self.keep_selection_visible();
    }

    pub fn selected_row(&self) -> Option<usize> {
        let selected = self.selected?;
        self.rows.iter().position(|&r| r == selected)
    }

    pub fn select(&mut self, row: JobRow) {
        if self.rows.contains(&row) {
            self.selected = Some(row);
        }
        self.keep_selection_visible();
    }

    pub fn select_index(&mut self, index: usize) {
        if let Some(&row) = self.rows.get(index) {
            self.select(row);
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let Some(current) = self.selected_row() else {
            self.select_index(0);
            return;
        };
        let last = self.rows.len().saturating_sub(1) as isize;
        self.select_index((current as isize + delta).clamp(0, last) as usize);
    }

    pub fn last(&mut self) {
        self.select_index(self.rows.len().saturating_sub(1));
    }

    /// Scroll so the selected row is on screen.
    pub fn keep_selection_visible(&mut self) {
        self.offset = offset_showing(self.offset, self.selected_row(), self.page, self.rows.len());
    }
}
