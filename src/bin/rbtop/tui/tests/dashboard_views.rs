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

/// The sizes an operator tries: small, a laptop's, a wide screen's, and the
/// long-standing 120x30.
const SIZES: [(u16, u16); 4] = [(120, 30), (80, 24), (160, 45), (200, 60)];

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
fn detail_of_a_host_whose_key_changed() {
    // The pinned and the presented fingerprints and the fix for this line;
    // never a path of rbtop's temporary known-hosts file.
    snapshot("detail_hostkey", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "jjjjjjjj"); // wrongkey
        app.update(Action::Detail);
        app
    });
    let mut app = fixture::mixed_fleet();
    press(&mut app, "jjjjjjjj");
    app.update(Action::Detail);
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("pinned key  SHA256:QuT7QRdgR5vOzaXYG1Tt8W5WilY0cCutuqcZEV1f8NQ"),
        "{screen}"
    );
    assert!(
        screen.contains("presented   SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM"),
        "{screen}"
    );
    assert!(
        screen.contains("field 8 (the host key) of /etc/nix/machines:9"),
        "{screen}"
    );
    assert!(!screen.contains("/tmp/"), "{screen}");
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
fn the_detail_flags_a_user_the_daemon_does_not_trust() {
    let mut app = fixture::mixed_fleet();
    let mut reports = fixture::mixed_reports();
    reports[1].trusted = Some(false); // b2, over ssh://
    fixture::answer_all(&mut app, reports, rbtop::dashboard::Stamp::now());
    press(&mut app, "j");
    app.update(Action::Detail);
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("Nix 2.8.0 · trusted no"), "{screen}");
    assert!(
        screen.contains(
            "builds will fail: not privileged (the builder's nix-daemon does not trust root@b2;"
        ),
        "{screen}"
    );
    // b1 (trust unknown) is not flagged.
    press(&mut app, "k");
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("trusted unknown"), "{screen}");
    assert!(!screen.contains("not privileged"), "{screen}");
}

#[test]
fn the_detail_keeps_the_timings_measured_when_the_session_opened() {
    // The second probe reuses the session and channel: it measures neither.
    let mut app = fixture::mixed_fleet();
    let mut reused = fixture::mixed_reports();
    for report in &mut reused {
        report.connect = None;
        report.handshake = None;
    }
    let stamp = rbtop::dashboard::Stamp::now();
    fixture::answer_all(&mut app, reused, stamp);
    app.update(Action::Detail);
    let screen = render(&mut app, 160, 45);
    assert!(
        screen.contains("timings     connect 84ms (opened 0s ago, kept) · handshake 31ms (opened 0s ago, kept) · ping 260µs"),
        "{screen}"
    );
}

#[test]
fn rows_that_do_not_fit_are_counted_and_the_selection_stays_on_screen() {
    // The detail pane open at 80x24 leaves room for a few hosts only.
    snapshot("detail_more_rows", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "G");
        app.update(Action::Detail);
        app
    });
    let mut app = fixture::mixed_fleet();
    press(&mut app, "G");
    app.update(Action::Detail);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("more "), "{screen}");
    assert!(
        screen.contains("✗ hostkey  wrongkey"),
        "the selection is shown: {screen}"
    );
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
fn detail_with_the_builder_s_own_substituters() {
    snapshot(
        "detail_builder_substituters",
        fixture::builder_substituters_checked,
    );
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
fn log_pane_scrolled_sideways_and_wrapped() {
    let right = || KeyEvent::new(KeyCode::Right, KeyModifiers::NONE);
    snapshot_jobs("log_sideways", || {
        let mut app = failed_build();
        press(&mut app, "l");
        app.on_key(right());
        app
    });
    let mut app = failed_build();
    press(&mut app, "l");
    let cut = render(&mut app, 80, 24);
    app.on_key(right());
    let moved = render(&mut app, 80, 24);
    assert!(moved.contains("from column 17"), "{moved}");
    assert_ne!(cut, moved);
    press(&mut app, "w");
    let wrapped = render(&mut app, 80, 24);
    assert!(wrapped.contains(" wrapped "), "{wrapped}");
    assert_eq!(
        app.log.as_ref().unwrap().left,
        0,
        "wrapping has no sideways scroll"
    );
}

#[test]
fn the_log_search_counts_its_matches() {
    let mut app = failed_build();
    press(&mut app, "l/line");
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let first = render(&mut app, 120, 30);
    let of = first
        .split("search 'line' 1/")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no 1/N: {first}"));
    assert!(of > 1, "{first}");
    press(&mut app, "n");
    let second = render(&mut app, 120, 30);
    assert!(
        second.contains(&format!("search 'line' 2/{of}")),
        "{second}"
    );
}

#[test]
fn e_on_a_job_explains_its_derivation() {
    let mut app = running_build();
    assert_eq!(app.focus, crate::tui::app::Focus::Jobs);
    let drv = rbtop::jobs::runner::lock(&app.jobs.list[0])
        .progress
        .derivations()[0]
        .drv
        .clone();
    press(&mut app, "e");
    let pane = app.explain.as_ref().expect("e opens the explainer");
    assert_eq!(pane.input, drv);
    assert!(pane.result.is_some(), "and explains it at once");
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
fn launch_on_a_down_host_says_so_and_asks() {
    snapshot_jobs("launch_down_host", || {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "jjjjb./numbered.nix"); // refused
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app
    });
    let mut app = fixture::mixed_fleet();
    press(&mut app, "jjjjb./numbered.nix");
    let enter = || KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(app.on_key(enter()), crate::tui::app::AppEffect::None);
    let screen = render(&mut app, 160, 45);
    assert!(
        screen.contains("warning: refused is down: refused: ssh: connect to host 127.0.0.2"),
        "{screen}"
    );
    assert!(
        screen.contains("Enter again to launch there anyway"),
        "{screen}"
    );
    assert!(matches!(
        app.on_key(enter()),
        crate::tui::app::AppEffect::Launch(_)
    ));
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
fn quit_with_a_build_running_asks() {
    snapshot_jobs("quit_confirm", || {
        let mut app = running_build();
        press(&mut app, "q");
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
fn a_remote_build_of_an_rbtop_job_names_it_and_enter_opens_its_log() {
    let mut app = fixture::triage_on_b1();
    let request = fixture::numbered_request(&["--argstr", "seed", "ssh", "--arg", "lines", "5"]);
    app.launched(Ok(fixture::job(
        1,
        request,
        SSH_LOG,
        ssh_lines_until_line_3(),
        None,
    )));
    let drv = rbtop::jobs::runner::lock(&app.jobs.list[0])
        .progress
        .derivations()[0]
        .drv
        .clone();
    if let Some(Ok(builds)) = app.fleet.hosts[0].builds.as_mut() {
        builds[0].drv = Some(drv);
    }
    app.focus = crate::tui::app::Focus::Detail;
    app.detail_build = 0;
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("rbtop job #1 (Enter: its log)"), "{screen}");
    assert!(
        screen.contains("held by pid 4242") && screen.contains(" · for alice: nix-build hello.nix"),
        "{screen}"
    );
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let log = app.log.as_ref().expect("Enter opens the job's log");
    assert_eq!((log.job, log.drv), (rbtop::jobs::job::JobId(1), Some(0)));
}

/// The hello build on b1 comes from slot 0's hook (4242), behind which is
/// alice's nix-build (4200): here, started by another rbtop.
fn elsewhere_log(pid: u32) -> Result<rbtop::jobs::elsewhere::FoundLog, String> {
    match pid {
        4200 => Ok(rbtop::jobs::elsewhere::FoundLog {
            path: "/home/alice/.local/state/rbtop/jobs/1-hello.log".into(),
            format: rbtop::jobs::elsewhere::LogFormat::Rbtop,
            owner: 1000,
            writer: rbtop::jobs::elsewhere::Writer {
                pid: 4200,
                start_time: 1,
            },
        }),
        _ => Err(format!("process {pid} is not known here")),
    }
}

/// No log to follow, in words holding a terminal escape (a path from
/// another process's environment).
fn no_log(pid: u32) -> Result<rbtop::jobs::elsewhere::FoundLog, String> {
    Err(format!(
        "no log to follow for process {pid}: /tmp/\x1b[2Jevil is not a regular file"
    ))
}

fn triage_with_hello_drv() -> App {
    let mut app = fixture::triage_on_b1();
    if let Some(Ok(builds)) = app.fleet.hosts[0].builds.as_mut() {
        builds[0].drv = Some("/nix/store/00000000000000000000000000000000-hello-2.12.drv".into());
    }
    app.detail_build = 0;
    app
}

#[test]
fn enter_on_a_build_another_rbtop_runs_follows_its_log() {
    let mut app = triage_with_hello_drv();
    app.find_log = elsewhere_log;
    let effect = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let crate::tui::app::AppEffect::FollowLog(found) = effect else {
        panic!("Enter follows the log: {effect:?}");
    };
    assert_eq!(
        found.path,
        std::path::PathBuf::from("/home/alice/.local/state/rbtop/jobs/1-hello.log")
    );
    // The event loop gives back the read-only job: its log opens.
    let now = Instant::now();
    let job = rbtop::jobs::job::Job::reading(
        rbtop::jobs::job::JobId(3),
        "/home/alice/.local/state/rbtop/jobs/1-hello.log",
        100,
        now,
    );
    app.following(std::sync::Arc::new(std::sync::Mutex::new(job)));
    assert_eq!(
        app.log.as_ref().map(|l| l.job),
        Some(rbtop::jobs::job::JobId(3))
    );
    assert_eq!(app.jobs.list.len(), 1);
    // A followed log is no build of ours: quitting does not ask.
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)),
        crate::tui::app::AppEffect::Quit
    );
    // Enter again while it is followed: the same job, not a second reader.
    app.log = None;
    app.focus = crate::tui::app::Focus::Detail;
    let again = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(again, crate::tui::app::AppEffect::None);
    assert_eq!(
        app.log.as_ref().map(|l| l.job),
        Some(rbtop::jobs::job::JobId(3))
    );
    assert_eq!(app.jobs.list.len(), 1);
}

#[test]
fn enter_on_a_build_with_no_log_to_follow_says_why() {
    let mut app = triage_with_hello_drv();
    app.find_log = no_log;
    let effect = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(effect, crate::tui::app::AppEffect::None);
    assert!(app.log.is_none());
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("no log to follow for process 4200: /tmp/\\x1b[2Jevil"),
        "{screen}"
    );
    assert!(!screen.contains('\x1b'), "sanitised: {screen}");
    // Another build selected: the note was about the previous one.
    app.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
    assert!(!render(&mut app, 200, 60).contains("no log to follow"));

    // A build whose derivation is not known here (the orphan).
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(app.detail_open, "Enter keeps the detail open");
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("no log here: its derivation is not known on this machine"),
        "{screen}"
    );

    // No slot of this machine there: another machine sent it.
    let mut app = triage_with_hello_drv();
    app.find_log = elsewhere_log;
    if let Some(load) = app.fleet.hosts[0].load.as_mut() {
        load.holders.clear();
    }
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("this machine holds no slot of b1"),
        "{screen}"
    );
}

/// With many slots above them, the builds are below the pane's end at
/// 80x24: selecting one scrolls it into view; paging still scrolls away.
#[test]
fn selecting_a_build_scrolls_it_into_view() {
    let mut app = fixture::triage_on_b1();
    if let Some(load) = app.fleet.hosts[0].load.as_mut() {
        let holder = load.holders[0].clone();
        load.holders = (0..6)
            .map(|slot| rbtop::slots::SlotHolder {
                slot,
                ..holder.clone()
            })
            .collect();
    }
    app.detail_build = 0;
    let shown = render(&mut app, 80, 24);
    assert!(
        !shown.contains("llvm-19"),
        "off screen to begin with: {shown}"
    );
    for _ in 0..2 {
        app.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        render(&mut app, 80, 24);
    }
    let shown = render(&mut app, 80, 24);
    assert!(shown.contains("▸ llvm-19"), "{shown}");
    app.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    let paged = render(&mut app, 80, 24);
    assert!(
        paged.contains("│status"),
        "PgUp scrolls to the top: {paged}"
    );
}

/// Enter found no log to follow: the detail says why, under the builds.
#[test]
fn detail_says_why_a_build_has_no_log_to_follow() {
    snapshot_jobs("detail_no_log", || {
        let mut app = triage_with_hello_drv();
        app.find_log = |pid| {
            Err(format!(
                "no log to follow for process {pid}: it was not started by rbtop \
                 (RBTOP_JOB_LOG is not set) and Nix's json-log-path is not set for it"
            ))
        };
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app
    });
}

/// Another rbtop's log followed: read-only, named by its file, no cancel
/// offered.
#[test]
fn a_followed_log_is_read_only_and_names_its_file() {
    let make = || {
        let mut app = triage_with_hello_drv();
        app.find_log = elsewhere_log;
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let now = Instant::now();
        let mut job = rbtop::jobs::job::Job::reading(
            rbtop::jobs::job::JobId(1),
            "/home/alice/.local/state/rbtop/jobs/1-hello.log",
            1000,
            now,
        );
        for line in fixture::SSH_LOG.lines().take(ssh_lines_until_line_3()) {
            job.handle(rbtop::jobs::job::Event::Stderr(line.into()), now);
        }
        app.following(std::sync::Arc::new(std::sync::Mutex::new(job)));
        app
    };
    snapshot_jobs("log_followed", make);
    let screen = render(&mut make(), 200, 60);
    assert!(
        screen.contains("reading /home/alice/.local/state/rbtop/jobs/1-hello.log (read-only)"),
        "{screen}"
    );
    assert!(!screen.contains("x cancel"), "{screen}");
}

#[test]
fn a_derivation_killed_with_k_says_who_killed_it() {
    let mut app = fixture::triage_on_b1();
    if let Some(Ok(builds)) = app.fleet.hosts[0].builds.as_mut() {
        builds[1].drv = Some("/nix/store/x-firefox-133.0.drv".into());
    }
    app.update(Action::KillBuild);
    press(&mut app, "y");
    assert_eq!(app.killed_with_k, ["/nix/store/x-firefox-133.0.drv"]);

    let mut app = failed_build();
    let drv = rbtop::jobs::runner::lock(&app.jobs.list[0])
        .progress
        .derivations()[0]
        .drv
        .clone();
    let before = render(&mut app, 160, 45);
    assert!(!before.contains("killed with K here"), "{before}");
    app.killed_with_k.push(drv);
    let after = render(&mut app, 160, 45);
    assert!(
        after.contains("failed (exit 3) (killed with K here)"),
        "{after}"
    );
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
