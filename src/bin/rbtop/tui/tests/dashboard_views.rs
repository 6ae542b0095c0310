//! The dashboard's views rendered on ratatui's TestBackend and compared
//! with reviewed snapshots (tests/snapshots), at 120x30 and 80x24. The
//! fixture's values are fixed; clock times and the retry countdown, which
//! depend on when and where the test runs, are filtered out.

use std::time::Instant;

use crate::tui::action::Action;
use crate::tui::{App, fixture, view};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::SNAPSHOTS;

const SIZES: [(u16, u16); 2] = [(120, 30), (80, 24)];

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    view::draw(&mut terminal, app, Instant::now()).unwrap();
    terminal.backend().to_string()
}

/// Snapshot `make()`'s app at both sizes.
fn snapshot(name: &str, make: impl Fn() -> App) {
    snapshot_filtered(name, r"next try in \d+s", "next try in [wait]", make);
}

/// Like `snapshot`, with elapsed and quiet times (which depend on how fast
/// the test runs) filtered out instead of the retry countdown.
fn snapshot_jobs(name: &str, make: impl Fn() -> App) {
    snapshot_filtered(name, r"\b\d+[smhd]( \d+[smh])?\b", "[dur]", make);
}

/// Snapshot at both sizes with clock times and `pattern` filtered out.
fn snapshot_filtered(name: &str, pattern: &str, replacement: &str, make: impl Fn() -> App) {
    for (width, height) in SIZES {
        let mut app = make();
        let screen = render(&mut app, width, height);
        insta::with_settings!({
            filters => vec![
                (r"\b\d\d:\d\d:\d\d\b", "[time]"),
                (pattern, replacement),
            ],
            snapshot_path => SNAPSHOTS,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), screen);
        });
    }
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

#[test]
fn probing() {
    snapshot("probing", || fixture::app(fixture::MIXED_MACHINES));
}

#[test]
fn mixed_fleet() {
    snapshot("mixed", fixture::mixed_fleet);
}

#[test]
fn detail_of_a_failing_host() {
    snapshot("detail_failing", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "jjjjjj"); // authfail
        app.update(Action::Detail);
        app
    });
}

#[test]
fn detail_of_an_up_host() {
    snapshot("detail_up", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "jjj"); // t1, over ssh-ng
        app.update(Action::Detail);
        app
    });
}

#[test]
fn detail_after_canaries() {
    snapshot("detail_canary", fixture::canaries_ran);
}

#[test]
fn detail_checked_as_a_user_with_a_daemon() {
    snapshot("detail_user_view", fixture::checked_as_a_user);
}

#[test]
fn detail_with_the_daemon_s_view() {
    snapshot("detail_daemon_view", fixture::daemon_view_checked);
}

#[test]
fn diagnostics_with_the_substituters() {
    snapshot("substituters", fixture::substituters_checked);
}

#[test]
fn help() {
    snapshot("help", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "?");
        app
    });
}

#[test]
fn diagnostics() {
    snapshot("diagnostics", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "d");
        app
    });
}

#[test]
fn filter_active() {
    snapshot("filter", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "/kvm");
        app
    });
}

#[test]
fn sorted_by_status_reversed() {
    snapshot("sorted", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "sS");
        app
    });
}

#[test]
fn empty_state() {
    snapshot("empty", || fixture::app(""));
}

#[test]
fn many_hosts_scroll_with_the_selection() {
    let mut app = fixture::large_fleet(200);
    render(&mut app, 120, 30);
    press(&mut app, "G");
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("builder-0199"), "{screen}");
    assert!(!screen.contains("builder-0000"), "{screen}");
}

// ---- builds: the jobs pane, the log pane, the launch form, the cancel question

const SSH_LOG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/internal-json/nix28-ssh.log"
));
const FAILURE_LOG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/internal-json/nix28-failure.log"
));

/// Lines of the ssh:// transcript up to and with `line 3 of 5`.
fn ssh_lines_until_line_3() -> usize {
    SSH_LOG
        .lines()
        .position(|l| l.contains("\"line 3 of 5\""))
        .unwrap()
        + 1
}

/// The fleet with a build on b1 three lines in.
fn running_build() -> App {
    let mut app = fixture::mixed_fleet();
    let request = fixture::numbered_request(&["--argstr", "seed", "ssh", "--arg", "lines", "5"]);
    let job = fixture::job(1, request, SSH_LOG, ssh_lines_until_line_3(), None);
    app.launched(Ok(job));
    app
}

/// The fleet with a build whose builder failed, Nix exiting 1.
fn failed_build() -> App {
    let mut app = fixture::mixed_fleet();
    let request = fixture::numbered_request(&["--arg", "fail", "3"]);
    let lines = FAILURE_LOG.lines().count();
    let job = fixture::job(2, request, FAILURE_LOG, lines, Some(1));
    app.launched(Ok(job));
    app
}

#[test]
fn jobs_pane_with_a_running_remote_build() {
    snapshot_jobs("jobs_running", running_build);
    let screen = render(&mut running_build(), 120, 30);
    assert!(screen.contains("#1 numbered.nix"), "{screen}");
    assert!(screen.contains("rbtop-numbered-ssh-1795259164"), "{screen}");
}

#[test]
fn jobs_pane_with_a_failed_build() {
    snapshot_jobs("jobs_failed", failed_build);
    let screen = render(&mut failed_build(), 120, 30);
    assert!(screen.contains("failed (exit 1)"), "{screen}");
}

#[test]
fn log_pane_following() {
    snapshot_jobs("log_following", || {
        let mut app = running_build();
        press(&mut app, "l");
        app
    });
}

#[test]
fn log_pane_with_a_search() {
    snapshot_jobs("log_search", || {
        let mut app = failed_build();
        press(&mut app, "l/line 2");
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app
    });
}

#[test]
fn launch_form() {
    snapshot_jobs("launch_form", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "b./numbered.nix --argstr seed 'open");
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app
    });
}

#[test]
fn cancel_confirm() {
    snapshot_jobs("cancel_confirm", || {
        let mut app = running_build();
        press(&mut app, "x");
        app
    });
}

#[test]
fn detail_with_slots_and_remote_builds() {
    // The orphan and the stalled build (no CPU for 15 minutes, past the
    // 10-minute limit) are flagged; the held upload lock is flagged slow.
    snapshot_jobs("detail_triage", fixture::triage_on_b1);
}

#[test]
fn kill_confirm() {
    snapshot_jobs("kill_confirm", || {
        let mut app = fixture::triage_on_b1();
        app.update(Action::KillBuild);
        app
    });
}

#[test]
fn explain_from_the_dashboard() {
    // `e` on b1 prefills its system; Enter ranks the fleet's machines for it.
    snapshot("explain_in_dashboard", || {
        let mut app = fixture::mixed_fleet();
        app.update(Action::Explain);
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app
    });
}

#[test]
fn explain_closes_with_esc_and_keeps_typed_keys_as_text() {
    let mut app = fixture::mixed_fleet();
    app.update(Action::Explain);
    assert_eq!(app.explain.as_ref().unwrap().input, "x86_64-linux");
    // `q` is text here, not quit.
    press(&mut app, " q");
    assert_eq!(app.explain.as_ref().unwrap().input, "x86_64-linux q");
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert!(app.explain.is_none());
}

#[test]
fn the_selected_remote_build_follows_its_process_and_k_needs_the_detail_focus() {
    let mut app = fixture::triage_on_b1();
    assert_eq!(app.selected_build().unwrap().pid, 6120);
    // The oldest build ends: the selection stays on 6120, now first.
    let mut rest = app.selected_builds()[1..].to_vec();
    app.on_builds(0, Some(Ok(rest.clone())), Instant::now());
    assert_eq!(app.selected_build().unwrap().pid, 6120);
    // 6120 ends too: the selection falls on what is left.
    rest.remove(0);
    app.on_builds(0, Some(Ok(rest)), Instant::now());
    assert_eq!(app.selected_build().unwrap().pid, 7120);
    // From the hosts table, K only moves the focus to the pane.
    app.focus = crate::tui::app::Focus::Hosts;
    app.update(Action::KillBuild);
    assert!(app.confirm.is_none());
    assert_eq!(app.focus, crate::tui::app::Focus::Detail);
    app.update(Action::KillBuild);
    assert!(app.confirm.as_ref().unwrap().question.contains("llvm-19"));
}

#[test]
fn a_remote_build_of_our_own_job_says_how_long_its_log_has_been_quiet() {
    let app = running_build();
    let drv = {
        let job = rbtop::jobs::runner::lock(&app.jobs.list[0]);
        job.progress.derivations()[0].drv.clone()
    };
    let later = Instant::now() + std::time::Duration::from_secs(700);
    let quiet = app.log_quiet_for(&drv, later).expect("our job builds it");
    assert!(quiet.as_secs() >= 700, "{quiet:?}");
    assert_eq!(app.log_quiet_for("/nix/store/x-other.drv", later), None);
}
