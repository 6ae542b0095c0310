//! The dashboard's UI state and how keys, mouse and probe results change
//! it. No terminal here: tests drive `App` directly and read its fields.

use crossterm::event::{KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::action::Action;
use super::explain_pane::{ExplainPane, PaneKey};
use super::jobs_pane::{JobDefaults, JobsPane};
use super::keymap::Keymap;
use super::launch_form::LaunchForm;
use super::log_pane::LogPane;
use super::popups::{Popup, Screen};
use super::scroll::{offset_showing, scrolled};
use super::text_input::{self, TextKey};
use super::view::{FrameLayout, Regions};
use rbtop::dashboard::{Context, FleetState, Sort, Stamp, rows};
use rbtop::jobs::job::JobId;
use rbtop::jobs::launch::LaunchRequest;
use rbtop::probe::ProbeEvent;
use rbtop::remote_builds::RemoteBuild;
use rbtop::slots::LocalLoad;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Diagnostics,
}

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
}

/// A yes/no question ("Cancel this job?"), waiting for its answer, and what
/// a yes does.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// The box's title.
    pub title: &'static str,
    pub question: String,
    /// What yes does, for the footer.
    pub yes: &'static str,
    pub on_yes: AppEffect,
}

pub struct App {
    pub fleet: FleetState,
    pub context: Context,
    pub keymap: Keymap,
    pub sort: Sort,
    pub filter: String,
    /// The filter line has the keyboard.
    pub editing_filter: bool,
    /// The selected host, as an index into `fleet.hosts` (stable across sorts).
    pub selected: Option<usize>,
    /// The first table row on screen.
    pub offset: usize,
    pub detail_open: bool,
    pub focus: Focus,
    pub overlay: Option<Overlay>,
    pub overlay_scroll: u16,
    pub detail_scroll: u16,
    /// Data rows that fit in the table, as the last frame measured.
    pub page: usize,
    /// Where the last frame put things, for the mouse.
    pub regions: Regions,
    pub jobs: JobsPane,
    /// The log pane, over the body while open.
    pub log: Option<LogPane>,
    pub form: Option<LaunchForm>,
    pub confirm: Option<Prompt>,
    /// The remote build selected in the detail pane, by position in the
    /// selected host's list.
    pub detail_build: usize,
    /// What the last `K` did, for the detail pane.
    pub kill_outcome: Option<(usize, Result<String, String>)>,
    /// The eligibility explainer (`e`), over the body while open.
    pub explain: Option<ExplainPane>,
    /// The local Nix's version, which decides how the explainer ranks.
    pub nix_version: Option<rbtop::nix_version::NixVersion>,
    /// Quitting: how many builds are still being cancelled.
    pub shutting_down: Option<usize>,
    /// Hosts shown, filtered and sorted.
    rows: Vec<usize>,
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
            detail_open: false,
            focus: Focus::Hosts,
            overlay: None,
            overlay_scroll: 0,
            detail_scroll: 0,
            page: 10,
            regions: Regions::default(),
            jobs: JobsPane::new(JobDefaults::default()),
            log: None,
            form: None,
            confirm: None,
            detail_build: 0,
            kill_outcome: None,
            explain: None,
            nix_version: None,
            shutting_down: None,
            rows: Vec::new(),
        };
        app.refresh_rows();
        app
    }

    /// Host indices in table order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The selected host's position in the table.
    pub fn selected_row(&self) -> Option<usize> {
        let selected = self.selected?;
        self.rows.iter().position(|&i| i == selected)
    }

    pub fn on_probe(&mut self, event: ProbeEvent, stamp: Stamp) {
        self.fleet.apply(event, stamp);
        self.refresh_rows();
        self.refresh_explain();
    }

    /// Re-rank the open explanation with the latest probes and slots.
    fn refresh_explain(&mut self) {
        if let Some(pane) = &mut self.explain {
            pane.refresh(&self.fleet, &self.context.local);
        }
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
    pub fn on_key(&mut self, key: KeyEvent) -> AppEffect {
        match self.top_popup() {
            Some(Popup::LaunchForm) => self.form_key(key),
            Some(Popup::Confirm) => self.confirm_key(key),
            Some(Popup::Explain) => self.explain_key(key),
            Some(Popup::LogSearch) => self.search_key(key),
            Some(Popup::Filter) => self.edit_filter(key),
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

    /// Typed characters are the explainer's text, as in the launch form.
    fn explain_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(pane) = &mut self.explain else {
            return AppEffect::None;
        };
        match pane.on_key(key, &self.fleet, &self.context.local) {
            PaneKey::Stay => AppEffect::None,
            PaneKey::Close => {
                self.explain = None;
                AppEffect::None
            }
            PaneKey::NotMine => self.quit_only(&key),
        }
    }

    /// Past a popup that takes typed text, only quitting gets through.
    pub(super) fn quit_only(&self, key: &KeyEvent) -> AppEffect {
        match self.keymap.action(key) {
            Some(Action::Quit) => AppEffect::Quit,
            _ => AppEffect::None,
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

    /// An action on the dashboard: the focused pane first.
    fn update_dashboard(&mut self, action: Action) -> AppEffect {
        if self.focus == Focus::Jobs
            && let Some(effect) = self.update_jobs(action)
        {
            return effect;
        }
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Launch => self.open_launch_form(),
            Action::Log => self.open_log(),
            // These act on a job or a log: nothing to do on the hosts.
            Action::Cancel
            | Action::Follow
            | Action::NextMatch
            | Action::PreviousMatch
            | Action::Confirm => {}
            Action::Refresh => return AppEffect::Refresh,
            Action::Help => self.open(Overlay::Help),
            Action::Diagnostics => self.open(Overlay::Diagnostics),
            Action::Filter => self.editing_filter = true,
            Action::NextSort => {
                self.sort.key = self.sort.key.next();
                self.refresh_rows();
            }
            Action::ReverseSort => {
                self.sort.reversed = !self.sort.reversed;
                self.refresh_rows();
            }
            Action::Detail => {
                self.detail_open = !self.detail_open && self.selected.is_some();
                self.focus = Focus::Hosts;
                self.detail_scroll = 0;
            }
            Action::NextPane => self.next_pane(),
            Action::Back => self.back(),
            Action::Up | Action::Down
                if self.focus == Focus::Detail && !self.selected_builds().is_empty() =>
            {
                let last = self.selected_builds().len() - 1;
                let current = self.detail_build.min(last);
                self.detail_build = if action == Action::Up {
                    current.saturating_sub(1)
                } else {
                    (current + 1).min(last)
                };
            }
            Action::Up | Action::Down | Action::PageUp | Action::PageDown
                if self.focus == Focus::Detail =>
            {
                self.scroll_detail(action);
            }
            Action::KillBuild => self.ask_to_kill(),
            Action::Explain => self.open_explain(),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as isize)),
            Action::PageDown => self.move_by(self.page.max(1) as isize),
            Action::Top => self.select_row(0),
            Action::Bottom => self.select_row(self.rows.len().saturating_sub(1)),
        }
        AppEffect::None
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

    /// `e`: the explainer, its line prefilled with the selected host's first
    /// system, ready to be edited or replaced by a `.drv` path.
    fn open_explain(&mut self) {
        self.editing_filter = false;
        let mut pane = ExplainPane::new(self.nix_version);
        if let Some(system) = self
            .selected
            .and_then(|i| self.fleet.hosts.get(i))
            .and_then(|h| h.machine.systems.first())
        {
            pane.input = system.clone();
        }
        self.explain = Some(pane);
    }

    /// `K`: "Kill this build on its builder?" Only with the detail pane's
    /// focus, where the selected build is marked; elsewhere `K` moves the
    /// focus there first.
    fn ask_to_kill(&mut self) {
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

    /// What a kill asked with `K` did on host `host`.
    pub fn on_kill_outcome(&mut self, host: usize, outcome: Result<String, String>) {
        self.kill_outcome = Some((host, outcome));
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

    /// A click closes help or the diagnostics, the wheel scrolls them.
    fn overlay_mouse(&mut self, mouse: MouseEvent) -> bool {
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => self.overlay = None,
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = mouse.kind == MouseEventKind::ScrollDown;
                self.overlay_scroll = scrolled(self.overlay_scroll, down, 3);
            }
            _ => return false,
        }
        true
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

    /// While typing a filter, characters are text; keys that are not
    /// characters (arrows, PgUp, Tab, F1) and Ctrl combinations keep their
    /// actions, so the table can be moved through and rbtop quit.
    fn edit_filter(&mut self, key: KeyEvent) -> AppEffect {
        match text_input::edit(&mut self.filter, key) {
            TextKey::Cancel => {
                self.filter.clear();
                self.editing_filter = false;
            }
            TextKey::Submit => self.editing_filter = false,
            TextKey::Edited => {}
            TextKey::Other => {
                return match self.keymap.action(&key) {
                    Some(action @ (Action::Quit | Action::Refresh)) => self.update(action),
                    Some(
                        action @ (Action::Up
                        | Action::Down
                        | Action::PageUp
                        | Action::PageDown
                        | Action::Top
                        | Action::Bottom),
                    ) => self.update(action),
                    Some(action @ (Action::Help | Action::Diagnostics)) => {
                        self.editing_filter = false;
                        self.update(action)
                    }
                    _ => AppEffect::None,
                };
            }
        }
        self.refresh_rows();
        AppEffect::None
    }

    fn update_overlay(&mut self, overlay: Overlay, action: Action) -> AppEffect {
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Down => self.overlay_scroll = scrolled(self.overlay_scroll, true, 1),
            Action::Up => self.overlay_scroll = scrolled(self.overlay_scroll, false, 1),
            Action::PageDown => self.overlay_scroll = scrolled(self.overlay_scroll, true, 10),
            Action::PageUp => self.overlay_scroll = scrolled(self.overlay_scroll, false, 10),
            Action::Top => self.overlay_scroll = 0,
            Action::Help if overlay != Overlay::Help => self.open(Overlay::Help),
            Action::Diagnostics if overlay != Overlay::Diagnostics => {
                self.open(Overlay::Diagnostics)
            }
            // Any other key closes it, as in htop.
            _ => self.overlay = None,
        }
        AppEffect::None
    }

    pub(super) fn open(&mut self, overlay: Overlay) {
        // The overlay takes the keyboard; the filter typed so far stays.
        self.editing_filter = false;
        self.overlay = Some(overlay);
        self.overlay_scroll = 0;
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

    fn scroll_detail(&mut self, action: Action) {
        self.detail_scroll = match action {
            Action::Up => scrolled(self.detail_scroll, false, 1),
            Action::Down => scrolled(self.detail_scroll, true, 1),
            Action::PageUp => scrolled(self.detail_scroll, false, 10),
            _ => scrolled(self.detail_scroll, true, 10),
        };
    }

    fn move_by(&mut self, delta: isize) {
        let Some(current) = self.selected_row() else {
            self.select_row(0);
            return;
        };
        let last = self.rows.len().saturating_sub(1) as isize;
        self.select_row((current as isize + delta).clamp(0, last) as usize);
    }

    fn select_row(&mut self, row: usize) {
        if let Some(&index) = self.rows.get(row) {
            if self.selected != Some(index) {
                self.detail_scroll = 0;
                self.detail_build = 0;
            }
            self.selected = Some(index);
        }
        self.keep_selection_visible();
    }

    /// Recompute the rows after anything that can change them, keeping the
    /// selected host selected when it is still shown.
    pub fn refresh_rows(&mut self) {
        self.rows = rows::visible(&self.fleet, &self.filter, self.sort);
        if self.selected_row().is_none() {
            self.selected = self.rows.first().copied();
            self.detail_scroll = 0;
            self.detail_build = 0;
        }
        if self.selected.is_none() {
            self.detail_open = false;
            if self.focus == Focus::Detail {
                self.focus = Focus::Hosts;
            }
        }
        self.keep_selection_visible();
    }

    /// Scroll so the selected row is on screen.
    pub fn keep_selection_visible(&mut self) {
        self.offset = offset_showing(self.offset, self.selected_row(), self.page, self.rows.len());
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

    use crossterm::event::{KeyCode, KeyEventKind, KeyEventState, KeyModifiers};

    use ratatui::layout::Rect;

    use super::*;
    use crate::tui::fixture;
    use rbtop::dashboard::SortKey;
    use rbtop::probe::{HostReport, Status, Via};

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    fn selected_name(app: &App) -> &str {
        app.fleet.hosts[app.selected.unwrap()].name()
    }

    fn shown(app: &App) -> Vec<&str> {
        app.rows()
            .iter()
            .map(|&i| app.fleet.hosts[i].name())
            .collect()
    }

    #[test]
    fn moving_clamps_at_both_ends_and_pages_by_the_visible_rows() {
        let mut app = fixture::mixed_fleet();
        app.page = 4;
        assert_eq!(selected_name(&app), "b1", "the first host is selected");
        app.update(Action::Up);
        assert_eq!(selected_name(&app), "b1");
        app.update(Action::Down);
        app.update(Action::Down);
        assert_eq!(selected_name(&app), "b3");
        app.update(Action::PageDown);
        assert_eq!(selected_name(&app), "authfail");
        assert_eq!(
            app.offset, 3,
            "scrolled so the selection is the last visible row"
        );
        app.update(Action::Bottom);
        assert_eq!(selected_name(&app), "wrongkey");
        app.update(Action::Down);
        assert_eq!(selected_name(&app), "wrongkey");
        assert_eq!(app.offset, 5);
        app.update(Action::Top);
        assert_eq!((selected_name(&app), app.offset), ("b1", 0));
        app.update(Action::PageUp);
        assert_eq!(selected_name(&app), "b1");
    }

    #[test]
    fn the_selection_follows_its_host_through_sorts() {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Bottom);
        assert_eq!(selected_name(&app), "wrongkey");
        app.update(Action::NextSort);
        assert_eq!(app.sort.key, SortKey::Status);
        assert_eq!(selected_name(&app), "wrongkey");
        assert_eq!(shown(&app)[..2], ["refused", "hung"], "failures first");
        app.update(Action::ReverseSort);
        assert!(app.sort.reversed);
        assert_eq!(shown(&app)[0], "b1", "up hosts first when reversed");
        assert_eq!(selected_name(&app), "wrongkey");
    }

    #[test]
    fn the_filter_narrows_as_typed_keeps_on_enter_and_clears_on_esc() {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Bottom);
        app.on_key(key(KeyCode::Char('/')));
        assert!(app.editing_filter);
        type_text(&mut app, "cuda");
        assert_eq!(shown(&app), ["t1"]);
        assert_eq!(
            selected_name(&app),
            "t1",
            "the hidden selection moves to a shown host"
        );
        // While typing, letters are text, not keys: `q` does not quit.
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), AppEffect::None);
        assert!(shown(&app).is_empty());
        app.on_key(key(KeyCode::Backspace));
        // Keys that are not characters keep working while typing.
        app.on_key(key(KeyCode::Down));
        assert_eq!(selected_name(&app), "t1", "one row: down stays on it");
        let alt_x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT);
        app.on_key(alt_x);
        assert_eq!(app.filter, "cuda", "Alt-x types nothing");
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), AppEffect::Quit);
        app.on_key(key(KeyCode::Enter));
        assert!(!app.editing_filter);
        assert_eq!(app.filter, "cuda");
        assert_eq!(shown(&app), ["t1"]);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, "");
        assert_eq!(shown(&app).len(), 9);
        // Esc while typing clears too.
        app.on_key(key(KeyCode::Char('/')));
        type_text(&mut app, "auth");
        app.on_key(key(KeyCode::Esc));
        assert!(!app.editing_filter && app.filter.is_empty());
        assert_eq!(
            selected_name(&app),
            "authfail",
            "the host found by filtering stays selected"
        );
    }

    #[test]
    fn results_merge_without_moving_the_selection() {
        let mut app = fixture::app(fixture::MIXED_MACHINES);
        assert_eq!(app.fleet.summary().probing, 9);
        app.update(Action::Down);
        app.update(Action::NextSort); // by status
        let stamp = Stamp::now();
        let all: Vec<usize> = (0..9).collect();
        app.fleet.start_probes(&all, stamp.at, false);
        app.on_probe(
            ProbeEvent {
                index: 6,
                report: HostReport::failed(Status::Auth, Via::Ssh, "denied"),
                elapsed: Duration::from_millis(5),
            },
            stamp,
        );
        assert_eq!(shown(&app)[0], "authfail", "a failure rises to the top");
        assert_eq!(selected_name(&app), "b2");
        fixture::answer_all(&mut app, fixture::mixed_reports(), stamp);
        assert_eq!(app.fleet.summary().up, 4);
        assert_eq!(selected_name(&app), "b2");
    }

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
    fn a_failing_host_counts_down_to_its_retry() {
        let mut app = fixture::mixed_fleet();
        let refused = &app.fleet.hosts[4];
        let wait = refused.retry_in(Instant::now()).unwrap();
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(3));
        app.update(Action::Refresh);
        assert_eq!(app.fleet.due(Instant::now(), true).len(), 9);
    }
}
