//! How keys act on builds: the jobs pane's selection, the log pane, the
//! launch form and the cancel prompt. Launching and cancelling are returned
//! as [`AppEffect`]s for the event loop to carry out.

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};

use super::action::Action;
use super::app::{App, AppEffect, Focus, Overlay, Prompt};
use super::launch_form::{FormOutcome, LaunchForm};
use super::log_pane::LogPane;
use super::text_input::{self, TextKey};
use rbtop::jobs::job::{Job, JobId, State};
use rbtop::jobs::log::LogEntry;
use rbtop::jobs::runner::{SharedJob, lock};

/// Where a job runs, in words: its pinned or first remote host, `local`
/// once it builds here, or `any builder` while Nix has not chosen.
pub fn host_label(job: &Job) -> &str {
    job.host()
        .unwrap_or(if job.progress.derivations().is_empty() {
            "any builder"
        } else {
            "local"
        })
}

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

    pub(super) fn open_launch_form(&mut self) {
        let pinned = self
            .selected
            .map(|i| rbtop::jobs::launch::Placement::pinned(&self.fleet.hosts[i].machine));
        let defaults = &self.jobs.defaults;
        self.editing_filter = false;
        self.form = Some(LaunchForm::new(
            pinned,
            defaults.fleet.clone(),
            defaults.tool,
        ));
    }

    pub(super) fn form_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(form) = &mut self.form else {
            return AppEffect::None;
        };
        match form.on_key(key) {
            FormOutcome::Editing => AppEffect::None,
            FormOutcome::Close => {
                self.form = None;
                AppEffect::None
            }
            // Quitting stops launching.
            FormOutcome::Submit(_) if self.shutting_down.is_some() => {
                form.error = Some("rbtop is quitting: no new builds".into());
                AppEffect::None
            }
            FormOutcome::Submit(request) => AppEffect::Launch(request),
            FormOutcome::NotMine => self.quit_only(&key),
        }
    }

    /// `y` does what the prompt asked; any other key leaves things alone.
    pub(super) fn confirm_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(prompt) = self.confirm.take() else {
            return AppEffect::None;
        };
        match self.keymap.action(&key) {
            Some(Action::Confirm) => prompt.on_yes,
            _ => AppEffect::None,
        }
    }

    /// Typing a search in the log: Enter finds the first match from the
    /// top line shown, Esc drops the search.
    pub(super) fn search_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(log) = &mut self.log else {
            return AppEffect::None;
        };
        match text_input::edit(&mut log.search, key) {
            TextKey::Cancel => {
                log.editing_search = false;
                log.search.clear();
                log.current_match = None;
            }
            TextKey::Submit => {
                log.editing_search = false;
                log.current_match = None;
                self.with_log_view(|log, view| log.jump(view, true));
            }
            TextKey::Edited => {}
            TextKey::Other => {
                return match self.keymap.action(&key) {
                    Some(
                        action @ (Action::Quit
                        | Action::Up
                        | Action::Down
                        | Action::PageUp
                        | Action::PageDown
                        | Action::Top
                        | Action::Bottom),
                    ) => self.update_log(action),
                    _ => AppEffect::None,
                };
            }
        }
        AppEffect::None
    }

    /// Keys while the log pane is open.
    pub(super) fn update_log(&mut self, action: Action) -> AppEffect {
        let page = self
            .log
            .as_ref()
            .map_or(1, |log| log.page.max(2) as isize - 1);
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Up => self.with_log_view(|log, view| log.scroll(view, -1)),
            Action::Down => self.with_log_view(|log, view| log.scroll(view, 1)),
            Action::PageUp => self.with_log_view(|log, view| log.scroll(view, -page)),
            Action::PageDown => self.with_log_view(|log, view| log.scroll(view, page)),
            Action::Top => self.with_log_view(|log, view| log.scroll_to_top(view)),
            Action::Bottom | Action::Follow => {
                if let Some(log) = &mut self.log {
                    log.resume_follow();
                }
            }
            Action::Filter => {
                if let Some(log) = &mut self.log {
                    log.editing_search = true;
                    log.search.clear();
                    log.message = None;
                }
            }
            Action::NextMatch => self.with_log_view(|log, view| log.jump(view, true)),
            Action::PreviousMatch => self.with_log_view(|log, view| log.jump(view, false)),
            Action::Cancel => {
                if let Some(id) = self.log.as_ref().map(|log| log.job) {
                    self.ask_cancel(id);
                }
            }
            Action::Back | Action::Log => self.log = None,
            Action::Help => self.open(Overlay::Help),
            Action::Launch => self.open_launch_form(),
            _ => {}
        }
        AppEffect::None
    }

    /// Keys while the jobs pane has focus; `None` for those it leaves to
    /// the rest of the dashboard.
    pub(super) fn update_jobs(&mut self, action: Action) -> Option<AppEffect> {
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
            _ => return None,
        }
        Some(AppEffect::None)
    }

    /// The selected row's log: the whole job's, or one derivation's.
    pub(super) fn open_log(&mut self) {
        if let Some(row) = self.jobs.selected {
            self.log = Some(LogPane::new(row.job, row.drv));
            self.focus = Focus::Jobs;
        }
    }

    /// Ask before cancelling a job still running (or cancelling: asking
    /// again skips the grace period).
    fn ask_cancel(&mut self, id: JobId) {
        let Some(job) = self.jobs.find(id) else {
            return;
        };
        let job = lock(job);
        if !job.is_active() {
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

    pub(super) fn log_mouse(&mut self, mouse: MouseEvent) -> bool {
        let delta = match mouse.kind {
            MouseEventKind::ScrollDown => 3,
            MouseEventKind::ScrollUp => -3,
            _ => return false,
        };
        self.with_log_view(|log, view| log.scroll(view, delta));
        true
    }

    /// Run `f` on the open log pane and the lines it shows (the job locked
    /// for just that long).
    fn with_log_view(&mut self, f: impl FnOnce(&mut LogPane, &[&LogEntry])) {
        let Some(log) = &mut self.log else {
            return;
        };
        let Some(job) = self.jobs.find(log.job) else {
            return;
        };
        let job = lock(job);
        let view = job.log.view(log.drv);
        f(log, &view);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::tui::fixture;
    use crate::tui::jobs_pane::JobRow;
    use rbtop::jobs::job::{Event, Graces};
    use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
    use rbtop::jobs::progress::{LineKind, LogLine};

    const SSH_LOG: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/internal-json/nix28-ssh.log"
    ));

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn press(app: &mut App, keys: &str) -> Vec<AppEffect> {
        keys.chars()
            .map(|c| app.on_key(key(KeyCode::Char(c))))
            .collect()
    }

    fn request(what: &str) -> LaunchRequest {
        LaunchRequest {
            args: vec![what.into()],
            placement: Placement::Pinned {
                uri: "ssh://b1".into(),
                line: "ssh://b1 x86_64-linux - 2 1 - - -".into(),
            },
            tool: BuildTool::NixBuild,
        }
    }

    /// A running job fed the first `lines` lines of the ssh:// transcript.
    fn running_job(id: u64, lines: usize) -> SharedJob {
        let now = Instant::now();
        let mut job = Job::new(
            JobId(id),
            request("numbered.nix"),
            vec!["nix".into()],
            1000,
            Graces::default(),
            now,
        );
        job.handle(Event::Spawned { pid: 4242 }, now);
        for line in SSH_LOG.lines().take(lines) {
            job.handle(Event::Stderr(line.into()), now);
        }
        Arc::new(Mutex::new(job))
    }

    /// A job whose log is `n` numbered build lines.
    fn job_with_lines(n: usize) -> SharedJob {
        let job = running_job(1, 0);
        {
            let mut job = lock(&job);
            for i in 1..=n {
                let text = if i % 10 == 0 {
                    format!("line {i}: Needle here")
                } else {
                    format!("line {i}")
                };
                job.log.push(LogLine {
                    drv: None,
                    kind: LineKind::Build,
                    text,
                });
            }
        }
        job
    }

    fn app_with(jobs: Vec<SharedJob>) -> App {
        let mut app = fixture::mixed_fleet();
        for job in jobs {
            app.jobs.add(job);
        }
        app
    }

    fn first_shown(app: &App) -> String {
        let log = app.log.as_ref().unwrap();
        let job = lock(app.jobs.find(log.job).unwrap());
        let view = job.log.view(log.drv);
        // `line 90`, without the search test's `: Needle here`.
        let text = &view[log.first_shown(&view)].text;
        text.split(':').next().unwrap().to_string()
    }

    #[test]
    fn b_opens_the_form_pinned_to_the_selected_host_and_enter_launches() {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "j"); // b2
        press(&mut app, "b");
        let form = app.form.as_ref().expect("b opens the launch form");
        assert_eq!(form.placement().host(), Some("ssh://root@b2"));
        // While the form is open, letters are text: `q` does not quit.
        let effects = press(&mut app, "q.nix");
        assert!(effects.iter().all(|e| *e == AppEffect::None), "{effects:?}");
        app.on_key(key(KeyCode::Tab));
        let effect = app.on_key(key(KeyCode::Enter));
        let AppEffect::Launch(request) = effect else {
            panic!("Enter launches: {effect:?}");
        };
        assert_eq!(request.args, ["q.nix"]);
        assert_eq!(
            request.placement, app.jobs.defaults.fleet,
            "Tab: Nix chooses"
        );
        // The launch failed: the error is in the form, which stays open.
        app.launched(Err("nix-store --realise builds .drv paths only".into()));
        let form = app.form.as_ref().expect("the form stays open");
        assert!(form.error.as_deref().unwrap().contains(".drv paths only"));
        // It worked: the new job is selected in the focused jobs pane.
        app.launched(Ok(running_job(7, 3)));
        assert_eq!(app.form, None);
        assert_eq!(app.focus, Focus::Jobs);
        assert_eq!(
            app.jobs.selected,
            Some(JobRow {
                job: JobId(7),
                drv: None
            })
        );
        // Esc closes a form without launching.
        press(&mut app, "b");
        assert_eq!(app.on_key(key(KeyCode::Esc)), AppEffect::None);
        assert_eq!(app.form, None);
    }

    #[test]
    fn tab_cycles_hosts_detail_and_jobs() {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Detail);
        app.update(Action::NextPane);
        assert_eq!(app.focus, Focus::Detail, "no jobs: hosts ↔ detail");
        app.update(Action::NextPane);
        assert_eq!(app.focus, Focus::Hosts);
        app.jobs.add(running_job(1, 20));
        let mut seen = Vec::new();
        for _ in 0..3 {
            app.update(Action::NextPane);
            seen.push(app.focus);
        }
        assert_eq!(seen, [Focus::Detail, Focus::Jobs, Focus::Hosts]);
        app.update(Action::Detail); // closed
        app.update(Action::NextPane);
        assert_eq!(app.focus, Focus::Jobs, "the closed detail pane is skipped");
        app.update(Action::Back);
        assert_eq!(app.focus, Focus::Hosts, "Esc leaves the jobs pane");
    }

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
    fn the_log_follows_until_scrolled_up_and_resumes_on_f_or_end() {
        let job = job_with_lines(100);
        let mut app = app_with(vec![job.clone()]);
        app.focus = Focus::Jobs;
        press(&mut app, "l");
        app.log.as_mut().unwrap().page = 10;
        assert!(app.log.as_ref().unwrap().follow);
        assert_eq!(first_shown(&app), "line 91");
        press(&mut app, "k");
        assert!(!app.log.as_ref().unwrap().follow, "scrolling up pauses");
        assert_eq!(first_shown(&app), "line 90");
        // New lines do not move a paused log.
        lock(&job).log.push(LogLine {
            drv: None,
            kind: LineKind::Build,
            text: "line 101".into(),
        });
        assert_eq!(first_shown(&app), "line 90");
        press(&mut app, "F");
        assert!(app.log.as_ref().unwrap().follow);
        assert_eq!(first_shown(&app), "line 92", "back at the newest");
        app.on_key(key(KeyCode::PageUp));
        assert!(!app.log.as_ref().unwrap().follow);
        app.on_key(key(KeyCode::End));
        assert!(app.log.as_ref().unwrap().follow, "End resumes too");
        press(&mut app, "g");
        assert_eq!(first_shown(&app), "line 1");
        press(&mut app, "j");
        assert!(!app.log.as_ref().unwrap().follow, "scrolling down does not");
    }

    #[test]
    fn search_jumps_to_matches_and_wraps_both_ways() {
        let mut app = app_with(vec![job_with_lines(100)]);
        app.focus = Focus::Jobs;
        press(&mut app, "l");
        app.log.as_mut().unwrap().page = 10;
        press(&mut app, "g"); // from the top
        press(&mut app, "/");
        // Typed text is the search, not keys: `n` and `q` are letters here.
        let effects = press(&mut app, "needle");
        assert!(effects.iter().all(|e| *e == AppEffect::None));
        app.on_key(key(KeyCode::Enter));
        let matched = |app: &App| {
            let log = app.log.as_ref().unwrap();
            log.current_match.map(|seq| seq + 1)
        };
        assert_eq!(matched(&app), Some(10), "the first match from the top");
        press(&mut app, "n");
        assert_eq!(matched(&app), Some(20));
        press(&mut app, "N");
        press(&mut app, "N");
        assert_eq!(matched(&app), Some(100), "wrapped back to the last one");
        press(&mut app, "n");
        assert_eq!(matched(&app), Some(10), "wrapped forward to the first");
        // A match out of sight scrolls the log to it.
        press(&mut app, "NN");
        assert_eq!(matched(&app), Some(90));
        assert!(
            first_shown(&app).starts_with("line 8"),
            "{}",
            first_shown(&app)
        );
        press(&mut app, "/zzz");
        app.on_key(key(KeyCode::Enter));
        let log = app.log.as_ref().unwrap();
        assert_eq!(log.message.as_deref(), Some("no line matches 'zzz'"));
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
