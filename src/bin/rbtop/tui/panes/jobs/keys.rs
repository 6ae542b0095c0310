//! Keys on the jobs pane: move through jobs and their derivations, open
//! a log, ask to cancel; and what the event loop's launches report back.

use super::view::host_label;
use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect, Focus};
use crate::tui::panes::confirm::Prompt;
use crate::tui::panes::log::LogPane;
use rbtop::jobs::job::{JobId, State};
use rbtop::jobs::runner::{SharedJob, lock};

impl App {
    /// What the event loop's launch gave: the job, now selected in the
    /// focused jobs pane, or why it could not start, shown in the form.
    pub fn launched(&mut self, result: Result<SharedJob, String>) {
        match result {
            Ok(job) => {
                self.form = None;
                self.log = None;
                self.jobs.add(job);
                self.focus = Focus::Jobs;
            }
            Err(e) => {
                if let Some(form) = &mut self.form {
                    form.error = Some(e);
                }
            }
        }
    }

    /// A job changed: new derivations get rows.
    pub fn on_jobs_changed(&mut self) {
        self.jobs.refresh();
    }

    /// Keys while the jobs pane has focus; `None` for those it leaves to
    /// the rest of the dashboard.
    pub(in crate::tui) fn update_jobs(&mut self, action: Action) -> Option<AppEffect> {
        let page = self.jobs.page.max(1) as isize;
        match action {
            Action::Up => self.jobs.move_by(-1),
            Action::Down => self.jobs.move_by(1),
            Action::PageUp => self.jobs.move_by(-page),
            Action::PageDown => self.jobs.move_by(page),
            Action::Top => self.jobs.select_index(0),
            Action::Bottom => self.jobs.last(),
            Action::Detail | Action::Log => self.open_log(),
            Action::Cancel => {
                if let Some(id) = self.jobs.selected.map(|row| row.job) {
                    self.ask_cancel(id);
                }
            }
            Action::Back => self.focus = Focus::Hosts,
            Action::Explain => match self.selected_drv_path() {
                Some(drv) => self.explain_drv(&drv),
                None => self.open_explain(),
            },
            _ => return None,
        }
        Some(AppEffect::None)
    }

    /// The `.drv` of the selected row: the derivation's, or for a job its
    /// first derivation's (else the `.drv` it was asked to build).
    fn selected_drv_path(&self) -> Option<String> {
        let row = self.jobs.selected?;
        let job = lock(self.jobs.find(row.job)?);
        let derivations = job.progress.derivations();
        match row.drv {
            Some(i) => derivations.get(i).map(|d| d.drv.clone()),
            None => derivations.first().map(|d| d.drv.clone()).or_else(|| {
                job.request
                    .args
                    .first()
                    .filter(|a| a.ends_with(".drv"))
                    .cloned()
            }),
        }
    }

    /// The selected row's log: the whole job's, or one derivation's.
    pub(in crate::tui) fn open_log(&mut self) {
        if let Some(row) = self.jobs.selected {
            self.log = Some(LogPane::new(row.job, row.drv));
            self.focus = Focus::Jobs;
        }
    }

    /// Ask before cancelling a job still running (or cancelling: asking
    /// again skips the grace period).
    pub(in crate::tui) fn ask_cancel(&mut self, id: JobId) {
        let Some(job) = self.jobs.find(id) else {
            return;
        };
        let job = lock(job);
        // A log being read (`--open-log`) has no build to cancel.
        if !job.is_active() || job.read_only {
            return;
        }
        let again = matches!(job.state, State::Cancelling { .. });
        let question = format!(
            "Cancel {} {} on {}{}? y/n",
            job.id,
            job.request.what(),
            host_label(&job),
            if again {
                " again, without waiting for the grace period"
            } else {
                ""
            }
        );
        drop(job);
        self.confirm = Some(Prompt {
            title: " Cancel ",
            question,
            yes: "cancel the build",
            on_yes: AppEffect::Cancel(id),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossterm::event::{KeyCode, KeyModifiers, MouseEvent, MouseEventKind};

    use super::*;
    use crate::tui::fixture::{app_with, first_shown, job_with_lines, key, press, running_job};
    use crate::tui::panes::jobs::state::JobRow;
    use rbtop::jobs::job::Event;

    #[test]
    fn the_jobs_pane_selects_jobs_and_their_derivations() {
        // Twenty lines in, the ssh:// transcript has its derivation.
        let mut app = app_with(vec![running_job(1, 20), running_job(2, 0)]);
        app.focus = Focus::Jobs;
        let rows = app.jobs.rows().to_vec();
        let row = |job, drv| JobRow {
            job: JobId(job),
            drv,
        };
        assert_eq!(rows, [row(1, None), row(1, Some(0)), row(2, None)]);
        assert_eq!(app.jobs.selected, Some(row(2, None)), "the last added");
        let selected_host = app.selected;
        press(&mut app, "k");
        assert_eq!(app.jobs.selected, Some(row(1, Some(0))));
        assert_eq!(
            app.selected, selected_host,
            "the hosts keep their selection"
        );
        press(&mut app, "g");
        assert_eq!(app.jobs.selected, Some(row(1, None)));
        press(&mut app, "G");
        assert_eq!(app.jobs.selected, Some(row(2, None)));
        press(&mut app, "j");
        assert_eq!(app.jobs.selected, Some(row(2, None)), "clamped at the end");
        // A derivation row opens that derivation's log; Esc closes it.
        press(&mut app, "kl");
        let log = app.log.as_ref().expect("l opens the log");
        assert_eq!((log.job, log.drv), (JobId(1), Some(0)));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.log, None);
        app.on_key(key(KeyCode::Enter));
        assert!(app.log.is_some(), "Enter opens it too");
    }

    #[test]
    fn a_click_selects_a_job_row_and_the_wheel_scrolls_a_log() {
        use crossterm::event::MouseButton;
        use ratatui::layout::Rect;
        // The numbered lines are job #1's; #2 has a derivation.
        let mut app = app_with(vec![running_job(2, 20), job_with_lines(50)]);
        app.regions.jobs_rows = Rect::new(0, 20, 120, 5);
        let mouse = |kind, row| MouseEvent {
            kind,
            column: 10,
            row,
            modifiers: KeyModifiers::NONE,
        };
        let click = MouseEventKind::Down(MouseButton::Left);
        assert!(app.on_mouse(mouse(click, 21)));
        assert_eq!(app.focus, Focus::Jobs);
        let derivation = JobRow {
            job: JobId(2),
            drv: Some(0),
        };
        assert_eq!(app.jobs.selected, Some(derivation));
        assert!(!app.on_mouse(mouse(click, 24)), "below the last row");
        assert_eq!(app.jobs.selected, Some(derivation));
        // The wheel over an open log scrolls it, pausing the follow.
        press(&mut app, "G");
        press(&mut app, "l");
        app.log.as_mut().unwrap().page = 10;
        assert!(app.on_mouse(mouse(MouseEventKind::ScrollUp, 5)));
        assert!(!app.log.as_ref().unwrap().follow);
        assert_eq!(first_shown(&app), "line 38");
    }

    #[test]
    fn a_log_opened_read_only_is_never_offered_a_cancel() {
        let job = rbtop::jobs::job::Job::reading(JobId(4), "/tmp/ci.log", 100, Instant::now());
        let mut app = app_with(vec![std::sync::Arc::new(std::sync::Mutex::new(job))]);
        app.focus = Focus::Jobs;
        assert_eq!(press(&mut app, "x"), [AppEffect::None]);
        assert_eq!(app.confirm, None);
    }

    #[test]
    fn x_then_y_cancels_and_x_then_anything_else_does_not() {
        let mut app = app_with(vec![running_job(3, 20)]);
        app.focus = Focus::Jobs;
        press(&mut app, "x");
        let prompt = app.confirm.as_ref().expect("x asks first");
        assert_eq!(prompt.question, "Cancel #3 numbered.nix on ssh://b1? y/n");
        assert_eq!(press(&mut app, "n"), [AppEffect::None]);
        assert_eq!(app.confirm, None, "any other key dismisses");
        assert_eq!(
            press(&mut app, "xy"),
            [AppEffect::None, AppEffect::Cancel(JobId(3))]
        );
        // From the log pane too; while cancelling, asking again escalates.
        lock(app.jobs.find(JobId(3)).unwrap()).handle(Event::CancelRequested, Instant::now());
        press(&mut app, "l");
        press(&mut app, "x");
        assert!(app.confirm.as_ref().unwrap().question.contains(" again"));
        assert_eq!(press(&mut app, "y"), [AppEffect::Cancel(JobId(3))]);
        // A finished job cannot be cancelled.
        {
            let mut job = lock(app.jobs.find(JobId(3)).unwrap());
            let exited = Event::Exited {
                code: None,
                signal: Some(2),
            };
            job.handle(exited, Instant::now());
            job.handle(Event::BuildersChecked(Vec::new()), Instant::now());
            assert!(job.is_finished());
        }
        assert_eq!(press(&mut app, "xy"), [AppEffect::None, AppEffect::None]);
        // On the hosts, x does nothing.
        app.log = None;
        app.focus = Focus::Hosts;
        app.jobs.add(running_job(4, 0));
        app.focus = Focus::Hosts;
        assert_eq!(press(&mut app, "xy"), [AppEffect::None, AppEffect::None]);
    }
}
