//! Keys on the detail pane: scroll it, or with builds listed select one;
//! `K` asks to kill the selected build on its builder. The builds come
//! from each probe; the selection follows its process across probes.

use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect, Focus};
use crate::tui::panes::confirm::Prompt;
use crate::tui::scroll::scrolled;
use rbtop::jobs::elsewhere::{self, FoundLog};
use rbtop::remote_builds::KillOutcome;
use rbtop::remote_builds::RemoteBuild;

impl App {
    /// Keys while the detail pane has focus; `None` for those it leaves to
    /// the rest of the dashboard.
    pub(in crate::tui) fn update_detail(&mut self, action: Action) -> Option<AppEffect> {
        match action {
            Action::Up | Action::Down if !self.selected_builds().is_empty() => {
                let last = self.selected_builds().len() - 1;
                let current = self.detail_build.min(last);
                self.build_log_note = None;
                self.reveal_build = true;
                self.detail_build = if action == Action::Up {
                    current.saturating_sub(1)
                } else {
                    (current + 1).min(last)
                };
            }
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
                self.scroll_detail(action)
            }
            Action::Detail | Action::Log => return self.open_build_log(),
            // The selected remote build's derivation, when it is known.
            Action::Explain => match self.selected_build().and_then(|b| b.drv.clone()) {
                Some(drv) => self.explain_drv(&drv),
                None => self.open_explain(),
            },
            _ => return None,
        }
        Some(AppEffect::None)
    }

    /// Enter: open (or close) the selected host's detail, the focus back
    /// on the table.
    pub(in crate::tui) fn toggle_detail(&mut self) {
        self.detail_open = !self.detail_open && self.selected.is_some();
        self.focus = Focus::Hosts;
        self.detail_scroll = 0;
    }

    /// The builds running on the selected host, as last listed.
    pub fn selected_builds(&self) -> &[RemoteBuild] {
        self.selected
            .and_then(|i| self.fleet.hosts.get(i))
            .and_then(|host| host.builds.as_ref())
            .and_then(|builds| builds.as_ref().ok())
            .map_or(&[], Vec::as_slice)
    }

    /// The remote build `K` would kill: the one selected in the detail pane.
    pub fn selected_build(&self) -> Option<&RemoteBuild> {
        if !self.detail_open {
            return None;
        }
        let builds = self.selected_builds();
        builds.get(self.detail_build.min(builds.len().saturating_sub(1)))
    }

    /// `K`: "Kill this build on its builder?" Only with the detail pane's
    /// focus, where the selected build is marked; elsewhere `K` moves the
    /// focus there first.
    pub(in crate::tui) fn ask_to_kill(&mut self) {
        let (Some(host), Some(build)) = (self.selected, self.selected_build()) else {
            return;
        };
        if self.focus != Focus::Detail {
            self.focus = Focus::Detail;
            return;
        }
        let name = self.fleet.hosts[host].name().to_string();
        let orphan = if build.client == rbtop::remote_builds::Client::Orphan {
            format!(
                " and its serving process {}",
                build.serving_pid.map_or("?".into(), |p| p.to_string())
            )
        } else {
            String::new()
        };
        let question = format!(
            "Kill {} (pid {}, {}) on {name}: SIGKILL to its process group{orphan}? y/n",
            build.name,
            build.pid,
            build.client.name()
        );
        self.confirm = Some(Prompt {
            title: " Kill a build ",
            question,
            yes: "kill it",
            on_yes: AppEffect::KillBuild {
                host,
                build: Box::new(build.clone()),
            },
        });
    }

    /// Take a probe's builds for host `index`, keeping the build selected in
    /// the detail pane selected (by pid and start time) when it is still there.
    pub fn on_builds(
        &mut self,
        index: usize,
        builds: rbtop::remote_builds::HostBuilds,
        now: std::time::Instant,
    ) {
        let selected = (self.selected == Some(index))
            .then(|| self.selected_build().map(|b| (b.pid, b.start_ticks)))
            .flatten();
        let Some(host) = self.fleet.hosts.get_mut(index) else {
            return;
        };
        host.set_builds(builds, now);
        if self.selected == Some(index) {
            let list = self.selected_builds();
            self.detail_build = selected
                .and_then(|id| list.iter().position(|b| (b.pid, b.start_ticks) == id))
                .unwrap_or(self.detail_build.min(list.len().saturating_sub(1)));
        }
    }

    /// How long since the last log line of `drv`, when one of rbtop's own
    /// jobs is building it now: a remote build's other sign of life.
    pub fn log_quiet_for(&self, drv: &str, now: std::time::Instant) -> Option<std::time::Duration> {
        self.jobs.list.iter().find_map(|job| {
            let job = rbtop::jobs::runner::lock(job);
            let derivation = job
                .progress
                .derivations()
                .iter()
                .find(|d| d.drv == drv && d.finished.is_none())?;
            Some(now.saturating_duration_since(derivation.last_line.unwrap_or(derivation.started)))
        })
    }

    /// The job of rbtop's building `drv` now, and the derivation's index in
    /// it: a remote build of this machine that is one of rbtop's jobs.
    pub fn job_building(&self, drv: &str) -> Option<(rbtop::jobs::job::JobId, usize)> {
        self.jobs.list.iter().find_map(|job| {
            let job = rbtop::jobs::runner::lock(job);
            let index = job
                .progress
                .derivations()
                .iter()
                .position(|d| d.drv == drv && d.finished.is_none())?;
            Some((job.id, index))
        })
    }

    /// The job whose Nix process is `pid`.
    pub fn job_of_pid(&self, pid: u32) -> Option<rbtop::jobs::job::JobId> {
        self.jobs.list.iter().find_map(|job| {
            let job = rbtop::jobs::runner::lock(job);
            match job.state {
                rbtop::jobs::job::State::Running { pid: p }
                | rbtop::jobs::job::State::Cancelling { pid: p, .. }
                    if p == pid =>
                {
                    Some(job.id)
                }
                _ => None,
            }
        })
    }

    /// Enter on a remote build in the detail pane: its log. One of rbtop's
    /// own jobs opens in place; a build this machine runs for another
    /// rbtop (or with Nix's `json-log-path`) is followed read-only; else
    /// the detail says why there is none. `None` with no build selected.
    fn open_build_log(&mut self) -> Option<AppEffect> {
        let host = self.selected?;
        let Some(drv) = self.selected_build()?.drv.clone() else {
            // Nothing to match a log with: the builder did not say it,
            // and it is in no store of this machine.
            self.build_log_note = Some((
                host,
                "no log here: its derivation is not known on this machine, so it is not \
                 one of this machine's builds"
                    .to_string(),
            ));
            return Some(AppEffect::None);
        };
        if let Some((job, index)) = self.job_building(&drv) {
            self.log = Some(crate::tui::panes::log::LogPane::new(job, Some(index)));
            return Some(AppEffect::None);
        }
        Some(match self.log_elsewhere(host, &drv) {
            Ok(found) => {
                self.build_log_note = None;
                match self.following_already(&found) {
                    Some(job) => {
                        self.log = Some(crate::tui::panes::log::LogPane::new(job, None));
                        AppEffect::None
                    }
                    None => AppEffect::FollowLog(found),
                }
            }
            Err(why) => {
                self.build_log_note = Some((host, why));
                AppEffect::None
            }
        })
    }

    /// The log of `drv`'s build on host `host` when this machine sent it:
    /// found from the processes behind this machine's slots there (the one
    /// naming `drv`, when there are several).
    fn log_elsewhere(&self, host: usize, drv: &str) -> Result<FoundLog, String> {
        let state = &self.fleet.hosts[host];
        let hooks: Vec<u32> = state
            .load
            .iter()
            .flat_map(|load| &load.holders)
            .map(|holder| holder.pid)
            .collect();
        if hooks.is_empty() {
            return Err(format!(
                "no log here: this machine holds no slot of {}, so another machine \
                 (or a hook that has ended) sent this build",
                state.name()
            ));
        }
        let mut found: Vec<FoundLog> = Vec::new();
        let mut why_not = None;
        for hook in hooks {
            let Some(behind) = (self.behind_hook)(hook) else {
                continue;
            };
            match (self.find_log)(behind.pid) {
                Ok(log) if !found.iter().any(|f| f.path == log.path) => found.push(log),
                Ok(_) => {}
                Err(why) => {
                    why_not.get_or_insert(why);
                }
            }
        }
        match found.len() {
            0 => Err(why_not.unwrap_or_else(|| {
                "no log here: the processes behind this machine's slots have ended".to_string()
            })),
            1 => Ok(found.remove(0)),
            n => found
                .into_iter()
                .find(|log| elsewhere::mentions(&log.path, log.owner, drv))
                .ok_or_else(|| {
                    format!(
                        "no log here: {n} logs of this machine's builds there, none names {drv}"
                    )
                }),
        }
    }

    /// The job already following `found`'s file: Enter again shows it
    /// rather than reading the file twice.
    fn following_already(&self, found: &FoundLog) -> Option<rbtop::jobs::job::JobId> {
        let name = rbtop::sanitize::for_terminal(&found.path.display().to_string()).into_owned();
        self.jobs.list.iter().find_map(|job| {
            let job = rbtop::jobs::runner::lock(job);
            (job.read_only && job.is_active() && job.request.what() == name).then_some(job.id)
        })
    }

    /// A followed log became a job: show it, its log open.
    pub fn following(&mut self, job: rbtop::jobs::runner::SharedJob) {
        let id = rbtop::jobs::runner::lock(&job).id;
        self.launched(Ok(job));
        self.log = Some(crate::tui::panes::log::LogPane::new(id, None));
    }

    /// What a kill asked with `K` did on host `host`.
    pub fn on_kill_outcome(&mut self, host: usize, outcome: KillOutcome) {
        self.kill_outcome = Some((host, outcome));
    }

    fn scroll_detail(&mut self, action: Action) {
        self.detail_scroll = match action {
            Action::Up => scrolled(self.detail_scroll, false, 1),
            Action::Down => scrolled(self.detail_scroll, true, 1),
            Action::PageUp => scrolled(self.detail_scroll, false, 10),
            _ => scrolled(self.detail_scroll, true, 10),
        };
    }
}
