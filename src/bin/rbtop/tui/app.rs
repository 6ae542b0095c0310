//! The dashboard's UI state and how keys, mouse and probe results change
//! it: the composition of the panes. Each pane's state is a field here
//! (tests drive `App` directly and read them), its keys and view live in
//! `panes/`; what has the keyboard is decided once, in `popups`. No
//! terminal here.

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::action::Action;
use super::keymap::Keymap;
use super::panes::confirm::Prompt;
use super::panes::explain::ExplainPane;
use super::panes::jobs::{JobDefaults, JobsPane};
use super::panes::launch::LaunchForm;
use super::panes::log::LogPane;
use super::panes::overlay::Overlay;
use super::popups::{Popup, Screen};
use super::scroll::scrolled;
use super::view::{FrameLayout, Regions};
use std::time::{Instant, SystemTime};

use rbtop::canary::CanaryResult;
use rbtop::daemon_view::DaemonHostView;
use rbtop::dashboard::{Context, FleetState, Sort, Stamp};
use rbtop::jobs::job::JobId;
use rbtop::jobs::launch::LaunchRequest;
use rbtop::probe::ProbeEvent;
use rbtop::remote_builds::KillOutcome;
use rbtop::remote_builds::RemoteBuild;
use rbtop::slots::LocalLoad;

use super::side_checks::SideResult;

/// Root's view of the hosts: where the daemon's SSH options were read and
/// each host's result, or why it could not be checked.
pub type DaemonViewResult = Result<(String, Vec<Option<DaemonHostView>>), String>;

/// Which pane of the dashboard screen has the keys no popup takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Hosts,
    Detail,
    Jobs,
}

/// What the event loop must do after an update: job effects are data here,
/// so the app is tested without starting a process.
#[derive(Clone, Debug, PartialEq)]
pub enum AppEffect {
    None,
    /// Probe every idle host now.
    Refresh,
    Quit,
    /// Start this build; the result comes back through [`App::launched`].
    Launch(LaunchRequest),
    /// Ask this job to stop (again: skip the grace period).
    Cancel(JobId),
    /// Kill this build on the builder of host `host` (an index into
    /// `fleet.hosts`); the outcome comes back through [`App::on_kill_outcome`].
    KillBuild {
        host: usize,
        build: Box<RemoteBuild>,
    },
    /// Follow the log of a build started elsewhere on this machine, read
    /// only; the job comes back through [`App::following`].
    FollowLog(rbtop::jobs::elsewhere::FoundLog),
    /// Run canary builds on these hosts (indices into `fleet.hosts`, up
    /// and not already running one); each result comes back through
    /// [`App::on_canary`].
    Canary(Vec<usize>),
}

pub struct App {
    pub fleet: FleetState,
    pub context: Context,
    pub keymap: Keymap,
    // The hosts table (panes/hosts).
    pub sort: Sort,
    pub filter: String,
    /// The filter line has the keyboard.
    pub editing_filter: bool,
    /// The selected host, as an index into `fleet.hosts` (stable across sorts).
    pub selected: Option<usize>,
    /// The first table row on screen.
    pub offset: usize,
    /// Data rows that fit in the table, as the last frame measured.
    pub page: usize,
    // The detail pane (panes/detail).
    pub detail_open: bool,
    pub detail_scroll: u16,
    /// The remote build selected in the detail pane, by position in the
    /// selected host's list.
    pub detail_build: usize,
    /// What the last `K` did, for the detail pane.
    pub kill_outcome: Option<(usize, KillOutcome)>,
    pub focus: Focus,
    // Help and the diagnostics (panes/overlay).
    pub overlay: Option<Overlay>,
    pub overlay_scroll: u16,
    /// Where the last frame put things, for the mouse.
    pub regions: Regions,
    pub jobs: JobsPane,
    /// The log pane, over the body while open.
    pub log: Option<LogPane>,
    pub form: Option<LaunchForm>,
    pub confirm: Option<Prompt>,
    /// The eligibility explainer (`e`), over the body while open.
    pub explain: Option<ExplainPane>,
    /// The local Nix's version, which decides how the explainer ranks.
    pub nix_version: Option<rbtop::nix_version::NixVersion>,
    /// Quitting: how many builds are still being cancelled.
    pub shutting_down: Option<usize>,
    /// The builds the operator agreed to cancel by quitting, for the exit line.
    pub cancelled_on_quit: Vec<String>,
    /// Derivations whose remote build `K` killed from here: their failure
    /// says who killed them.
    pub killed_with_k: Vec<String>,
    /// The `:` command line, while typed.
    pub command_line: Option<super::panes::command::CommandLine>,
    /// Who a slot's hook works for (`/proc`); tests put in a fixed answer.
    pub behind_hook: fn(u32) -> Option<rbtop::slots::behind::Behind>,
    /// Where the Nix process `pid` logs (injected in tests, like `behind_hook`).
    pub find_log: fn(u32) -> Result<rbtop::jobs::elsewhere::FoundLog, String>,
    /// Why Enter found no log for the build selected on host N.
    pub build_log_note: Option<(usize, String)>,
    /// The next frame scrolls the detail pane to the selected build (set
    /// when the selection moves; scrolling by page is left alone).
    pub reveal_build: bool,
    /// Hosts shown, filtered and sorted.
    pub(in crate::tui) rows: Vec<usize>,
}

impl App {
    pub fn new(fleet: FleetState, context: Context, keymap: Keymap) -> App {
        let mut app = App {
            fleet,
            context,
            keymap,
            sort: Sort::default(),
            filter: String::new(),
            editing_filter: false,
            selected: None,
            offset: 0,
            page: 10,
            detail_open: false,
            detail_scroll: 0,
            detail_build: 0,
            kill_outcome: None,
            focus: Focus::Hosts,
            overlay: None,
            overlay_scroll: 0,
            regions: Regions::default(),
            jobs: JobsPane::new(JobDefaults::default()),
            log: None,
            form: None,
            confirm: None,
            explain: None,
            nix_version: None,
            shutting_down: None,
            cancelled_on_quit: Vec::new(),
            killed_with_k: Vec::new(),
            command_line: None,
            behind_hook: rbtop::slots::behind::behind,
            find_log: rbtop::jobs::elsewhere::find,
            build_log_note: None,
            reveal_build: false,
            rows: Vec::new(),
        };
        app.refresh_rows();
        app
    }

    pub fn on_probe(&mut self, event: ProbeEvent, stamp: Stamp) {
        self.fleet.apply(event, stamp);
        self.refresh_rows();
        self.refresh_explain();
    }

    /// Returns whether anything shown changed.
    pub fn on_load(&mut self, load: LocalLoad) -> bool {
        let changed = self.fleet.apply_load(load);
        if changed {
            self.refresh_rows();
            self.refresh_explain();
        }
        changed
    }

    /// A key goes to the popup that has the keyboard; with none (or help
    /// and the diagnostics, which take actions, not text) it is an action.
    /// Quitting with builds running asks first, whichever pane had the key.
    pub fn on_key(&mut self, key: KeyEvent) -> AppEffect {
        let answering_quit = self.confirm.as_ref().is_some_and(|p| p.is_quit());
        match self.route_key(key) {
            AppEffect::Quit if !answering_quit => self.ask_before_quitting(),
            effect => effect,
        }
    }

    fn route_key(&mut self, key: KeyEvent) -> AppEffect {
        match self.top_popup() {
            Some(Popup::LaunchForm) => self.form_key(key),
            Some(Popup::Confirm) => self.confirm_key(key),
            Some(Popup::Explain) => self.explain_key(key),
            Some(Popup::LogSearch) => self.search_key(key),
            Some(Popup::Filter) => self.edit_filter(key),
            Some(Popup::Command) => self.command_key(key),
            Some(Popup::Overlay(_)) | None => match self.keymap.action(&key) {
                Some(action) => self.update(action),
                None => {
                    // Any key closes help or diagnostics, even one bound to nothing.
                    self.overlay = None;
                    AppEffect::None
                }
            },
        }
    }

    /// An action: help and the diagnostics take it when open, else the
    /// screen (a text popup hands on here only the actions it lets through).
    pub fn update(&mut self, action: Action) -> AppEffect {
        match (self.top_popup(), self.screen()) {
            (Some(Popup::Overlay(overlay)), _) => self.update_overlay(overlay, action),
            (_, Screen::Log) => self.update_log(action),
            (_, Screen::Dashboard) => self.update_dashboard(action),
        }
    }

    /// Past a popup that takes typed text, only quitting gets through.
    pub(in crate::tui) fn quit_only(&self, key: &KeyEvent) -> AppEffect {
        match self.keymap.action(key) {
            Some(Action::Quit) => AppEffect::Quit,
            _ => AppEffect::None,
        }
    }

    /// An action on the dashboard: the focused pane first, then what any
    /// pane of it does.
    fn update_dashboard(&mut self, action: Action) -> AppEffect {
        let focused = match self.focus {
            Focus::Jobs => self.update_jobs(action),
            Focus::Detail => self.update_detail(action),
            Focus::Hosts => None,
        };
        if let Some(effect) = focused {
            return effect;
        }
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Refresh => return AppEffect::Refresh,
            Action::Launch => self.open_launch_form(),
            Action::Log => self.open_log(),
            Action::Help => self.open(Overlay::Help),
            Action::Diagnostics => self.open(Overlay::Diagnostics),
            Action::Explain => self.open_explain(),
            Action::Command => self.open_command_line(),
            Action::Canary => return self.start_canaries(self.selected.into_iter().collect()),
            Action::CanaryAll => return self.start_canaries((0..self.fleet.hosts.len()).collect()),
            Action::Detail => self.toggle_detail(),
            Action::KillBuild => self.ask_to_kill(),
            Action::NextPane => self.next_pane(),
            Action::Back => self.back(),
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
            | Action::Filter
            | Action::NextSort
            | Action::PreviousSort
            | Action::ReverseSort => self.update_hosts(action),
            // These act on a job or a log: nothing to do on the hosts.
            Action::Cancel
            | Action::Follow
            | Action::NextMatch
            | Action::PreviousMatch
            | Action::ScrollLeft
            | Action::ScrollRight
            | Action::Wrap
            | Action::Confirm => {}
        }
        AppEffect::None
    }

    /// Canaries on `hosts`: those not up get `skipped` at once; the detail
    /// pane opens on the selected host to show what happens.
    fn start_canaries(&mut self, hosts: Vec<usize>) -> AppEffect {
        if self.selected.is_some() {
            self.detail_open = true;
        }
        let start = self.fleet.start_canaries(&hosts, Instant::now());
        if start.is_empty() {
            AppEffect::None
        } else {
            AppEffect::Canary(start)
        }
    }

    /// Root's view of the hosts was checked (or could not be).
    pub fn on_daemon_view(&mut self, checked: DaemonViewResult) {
        match checked {
            Ok((source, views)) => {
                self.fleet.apply_daemon_view(views);
                self.context.daemon_view = Some(Ok(source));
            }
            Err(e) => self.context.daemon_view = Some(Err(e)),
        }
    }

    /// A result of the checks beside the probes (start, `r`).
    pub fn on_side_result(&mut self, result: SideResult) {
        match result {
            SideResult::Substituters(checks) => self.context.substituters = Some(checks),
            SideResult::DaemonView(checked) => self.on_daemon_view(checked),
            SideResult::BuilderSubstituters(host, outcome) => {
                self.fleet.apply_builder_substituters(host, outcome);
            }
        }
    }

    /// A canary build ended.
    pub fn on_canary(&mut self, host: usize, result: CanaryResult) {
        self.fleet.finish_canary(host, result, SystemTime::now());
    }

    /// Tab: hosts → the detail pane (when open) → jobs (when any) → hosts.
    /// With neither, Tab opens the detail pane, as before jobs existed.
    fn next_pane(&mut self) {
        let jobs = !self.jobs.is_empty();
        self.focus = match self.focus {
            Focus::Hosts if self.detail_open && self.selected.is_some() => Focus::Detail,
            Focus::Hosts if jobs => Focus::Jobs,
            Focus::Hosts if self.selected.is_some() => {
                self.detail_open = true;
                Focus::Detail
            }
            Focus::Detail if jobs => Focus::Jobs,
            _ => Focus::Hosts,
        };
        // The build the detail's keys act on comes into view.
        self.reveal_build = self.focus == Focus::Detail;
    }

    /// Esc: undo the innermost thing open.
    fn back(&mut self) {
        if matches!(self.focus, Focus::Jobs | Focus::Detail) {
            self.focus = Focus::Hosts;
        } else if self.detail_open {
            self.detail_open = false;
        } else if !self.filter.is_empty() {
            self.filter.clear();
            self.refresh_rows();
        }
    }

    /// Returns whether anything changed: mouse motion, which the terminal
    /// reports too, must not cost a frame. The mouse goes to the first
    /// popup that takes it, else to the screen: the text popups let clicks
    /// through to what they cover.
    pub fn on_mouse(&mut self, mouse: MouseEvent) -> bool {
        match (
            self.popups().find(|popup| popup.takes_mouse()),
            self.screen(),
        ) {
            (Some(_), _) => self.overlay_mouse(mouse),
            (None, Screen::Log) => self.log_mouse(mouse),
            (None, Screen::Dashboard) => self.dashboard_mouse(mouse),
        }
    }

    /// A click selects what it lands on (as the last frame placed it), the
    /// wheel scrolls what it is over.
    fn dashboard_mouse(&mut self, mouse: MouseEvent) -> bool {
        let at = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if self.regions.jobs_rows.contains(at) {
                    let row = self.jobs.offset + usize::from(at.y - self.regions.jobs_rows.y);
                    if row >= self.jobs.rows().len() {
                        return false;
                    }
                    self.jobs.select_index(row);
                    self.focus = Focus::Jobs;
                } else if self.regions.warnings.contains(at) {
                    self.open(Overlay::Diagnostics);
                } else if self.regions.table_rows.contains(at) {
                    let row = self.offset + usize::from(at.y - self.regions.table_rows.y);
                    if row >= self.rows.len() {
                        return false;
                    }
                    self.select_row(row);
                    self.focus = Focus::Hosts;
                } else if self.regions.detail.contains(at) {
                    self.focus = Focus::Detail;
                } else {
                    return false;
                }
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = mouse.kind == MouseEventKind::ScrollDown;
                if self.regions.jobs_rows.contains(at) {
                    self.jobs.move_by(if down { 3 } else { -3 });
                } else if self.regions.detail.contains(at) {
                    self.detail_scroll = scrolled(self.detail_scroll, down, 3);
                } else {
                    self.move_by(if down { 3 } else { -3 });
                }
                true
            }
            _ => false,
        }
    }

    /// Keep what the frame just drawn measured: where things are, for the
    /// mouse; rows that fit and where tables start, for the keys; scrolls
    /// stopped at the end of their text.
    pub fn after_frame(&mut self, drawn: FrameLayout) {
        self.regions = drawn.regions;
        if let Some(table) = drawn.hosts {
            self.page = table.page;
            self.offset = table.offset;
        }
        if let Some(table) = drawn.jobs {
            self.jobs.page = table.page;
            self.jobs.offset = table.offset;
        }
        if let (Some(page), Some(log)) = (drawn.log_page, &mut self.log) {
            log.page = page;
        }
        if let Some(scroll) = drawn.detail_scroll {
            self.detail_scroll = scroll;
            self.reveal_build = false;
        }
        if let Some(scroll) = drawn.overlay_scroll {
            self.overlay_scroll = scroll;
        }
        if let (Some(scroll), Some(pane)) = (drawn.explain_scroll, &mut self.explain) {
            pane.scroll = scroll;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossterm::event::{KeyCode, KeyModifiers};
    use ratatui::layout::Rect;

    use super::*;
    use crate::tui::fixture::{self, key, running_job, selected_name};

    #[test]
    fn keys_open_and_close_panes_and_overlays() {
        let mut app = fixture::mixed_fleet();
        assert_eq!(app.on_key(key(KeyCode::Char('r'))), AppEffect::Refresh);
        app.on_key(key(KeyCode::Enter));
        assert!(app.detail_open);
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Detail);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.detail_scroll, 1, "j scrolls the focused detail pane");
        assert_eq!(selected_name(&app), "b1");
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.focus, Focus::Hosts);
        app.on_key(key(KeyCode::Esc));
        assert!(!app.detail_open);
        app.on_key(key(KeyCode::Char('?')));
        assert_eq!(app.overlay, Some(Overlay::Help));
        app.on_key(key(KeyCode::Char('d')));
        assert_eq!(app.overlay, Some(Overlay::Diagnostics));
        app.on_key(key(KeyCode::Char('x')));
        assert_eq!(app.overlay, None, "any other key closes");
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), AppEffect::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), AppEffect::Quit);
    }

    #[test]
    fn quitting_with_builds_running_asks_and_names_them() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for (answer, quits) in [
            (key(KeyCode::Char('y')), true),
            (key(KeyCode::Char('q')), true),
            (ctrl_c, true),
            (key(KeyCode::Char('n')), false),
            (key(KeyCode::Esc), false),
        ] {
            let mut app = fixture::mixed_fleet();
            app.launched(Ok(running_job(1, 3)));
            assert_eq!(app.on_key(key(KeyCode::Char('q'))), AppEffect::None);
            let prompt = app.confirm.as_ref().expect("asks before quitting");
            assert!(
                prompt
                    .question
                    .starts_with("1 build is running: #1 numbered.nix on "),
                "{}",
                prompt.question
            );
            let effect = app.on_key(answer);
            assert_eq!(effect == AppEffect::Quit, quits, "{answer:?}");
            assert!(app.confirm.is_none());
            assert_eq!(app.cancelled_on_quit.len(), usize::from(quits));
        }
        // A finished build is nothing to cancel: q quits at once.
        let mut app = fixture::mixed_fleet();
        app.launched(Ok(running_job(1, 3)));
        rbtop::jobs::runner::lock(&app.jobs.list[0]).handle(
            rbtop::jobs::job::Event::Exited {
                code: Some(0),
                signal: None,
            },
            std::time::Instant::now(),
        );
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), AppEffect::Quit);
    }

    #[test]
    fn the_mouse_selects_the_clicked_row_and_the_wheel_scrolls() {
        let mut app = fixture::mixed_fleet();
        app.regions.table_rows = Rect::new(0, 4, 120, 5);
        app.regions.warnings = Rect::new(60, 0, 20, 1);
        app.page = 5;
        let click = |column, row| MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        };
        assert!(app.on_mouse(click(10, 6)));
        assert_eq!(selected_name(&app), "b3");
        let moved = MouseEvent {
            kind: MouseEventKind::Moved,
            ..click(40, 7)
        };
        assert!(!app.on_mouse(moved), "motion changes nothing, so no frame");
        app.on_mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            ..click(10, 6)
        });
        assert_eq!(selected_name(&app), "hung", "three rows down");
        app.on_mouse(click(10, 30));
        assert_eq!(
            selected_name(&app),
            "hung",
            "a click below the rows changes nothing"
        );
        app.on_mouse(click(65, 0));
        assert_eq!(app.overlay, Some(Overlay::Diagnostics));
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
    fn c_asks_for_a_canary_on_the_selected_host_and_c_capital_on_all() {
        let mut app = fixture::mixed_fleet();
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            AppEffect::Canary(vec![0])
        );
        assert!(app.detail_open, "the detail pane shows what happens");
        assert!(app.fleet.hosts[0].canary.as_ref().unwrap().is_running());
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            AppEffect::None,
            "not twice at once"
        );
        let shift_c = KeyEvent::new(KeyCode::Char('C'), KeyModifiers::SHIFT);
        assert_eq!(
            app.on_key(shift_c),
            AppEffect::Canary(vec![1, 2, 3]),
            "the up hosts not already building one"
        );
        let refused = app.fleet.hosts[4]
            .canary
            .as_ref()
            .unwrap()
            .result()
            .unwrap();
        assert_eq!(refused.message.as_deref(), Some("host is not up (refused)"));
        app.on_canary(0, rbtop::canary::CanaryResult::skipped("interrupted"));
        assert!(!app.fleet.hosts[0].canary.as_ref().unwrap().is_running());
        assert_eq!(app.fleet.canary_summary().running, 3);
    }

    #[test]
    fn a_failing_host_counts_down_to_its_retry() {
        let mut app = fixture::mixed_fleet();
        let refused = &app.fleet.hosts[4];
        let wait = refused.retry_in(Instant::now()).unwrap();
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(3));
        app.update(Action::Refresh);
        assert_eq!(app.fleet.due(Instant::now(), true).len(), 9);
    }
}
