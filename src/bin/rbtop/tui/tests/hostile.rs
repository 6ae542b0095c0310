//! Hostile text from builders, files and build logs through every pane: no
//! cell the terminal is sent may hold a control character (an escape there
//! would set the title, clear the screen or write the clipboard).

use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rbtop::jobs::progress::{LineKind, LogLine};
use rbtop::probe::{HostReport, Status, Via};
use rbtop::sanitize::HOSTILE;

use crate::tui::action::Action;
use crate::tui::{App, fixture, view};

/// Every cell of a drawn frame; panics on one holding a control character.
fn assert_clean(app: &mut App, what: &str) {
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    view::draw(&mut terminal, app, Instant::now()).unwrap();
    for cell in terminal.backend().buffer().content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "{what}: cell {:?} in\n{}",
            cell.symbol(),
            terminal.backend()
        );
    }
}

/// The mixed fleet with each host's answers replaced by hostile text.
fn hostile_fleet() -> App {
    let mut app = fixture::app(fixture::MIXED_MACHINES);
    let reports: Vec<HostReport> = fixture::mixed_reports()
        .into_iter()
        .enumerate()
        .map(|(i, mut report)| {
            let evil = HOSTILE[i % HOSTILE.len()];
            if report.status == Status::Up {
                report.nix_version = Some(evil.into());
                report.protocol_version = Some(evil.into());
                if let Some(facts) = report.facts.as_mut() {
                    facts.kernel = Some(evil.into());
                    facts.arch = Some(evil.into());
                }
                report
            } else {
                HostReport {
                    stderr: Some(evil.into()),
                    ..HostReport::failed(report.status, Via::Ssh, evil)
                }
            }
        })
        .collect();
    let stamp = rbtop::dashboard::Stamp {
        at: Instant::now(),
        wall: fixture::epoch(),
    };
    fixture::answer_all(&mut app, reports, stamp);
    app
}

#[test]
fn hosts_and_detail_panes_show_no_control_character() {
    let mut app = hostile_fleet();
    assert_clean(&mut app, "hosts");
    let hosts = app.fleet.hosts.len();
    for i in 0..hosts {
        let mut app = hostile_fleet();
        fixture::press(&mut app, &"j".repeat(i));
        app.update(Action::Detail);
        assert_clean(&mut app, &format!("detail of host {i}"));
    }
}

#[test]
fn canaries_the_daemon_s_view_and_substituters_show_no_control_character() {
    use rbtop::canary::{CanaryResult, CanaryStatus, FailureClass};
    use rbtop::substituters::SubstituterCheck;
    for (i, evil) in HOSTILE.iter().enumerate() {
        let mut app = fixture::daemon_view_checked();
        let mut failed = CanaryResult::skipped("");
        failed.status = CanaryStatus::Failed;
        failed.reason = Some(FailureClass::RemoteError);
        failed.message = Some((*evil).into());
        app.fleet.start_canaries(&[1], Instant::now());
        app.on_canary(1, failed);
        if let Some(view) = app.fleet.hosts[1].daemon_view.as_mut() {
            view.reason = Some((*evil).into());
        }
        assert_clean(&mut app, &format!("detail with hostile canary {i}"));
        let evil_check = SubstituterCheck {
            uri: (*evil).into(),
            status: "error",
            reason: Some((*evil).into()),
            elapsed: std::time::Duration::ZERO,
            priority: None,
        };
        app.fleet.apply_builder_substituters(
            1,
            Ok(rbtop::substituters::from_builder::BuilderSubstituters {
                checks: vec![evil_check],
                not_checked: 0,
            }),
        );
        assert_clean(
            &mut app,
            &format!("detail with a builder's hostile substituter {i}"),
        );
        app.fleet.apply_builder_substituters(1, Err((*evil).into()));
        assert_clean(
            &mut app,
            &format!("detail with a builder's hostile failure {i}"),
        );
        app.context.substituters = Some(vec![SubstituterCheck {
            uri: (*evil).into(),
            status: "bad-cache-info",
            reason: Some((*evil).into()),
            elapsed: std::time::Duration::ZERO,
            priority: None,
        }]);
        app.update(Action::Diagnostics);
        assert_clean(&mut app, &format!("hostile substituter {i}"));
    }
}

#[test]
fn jobs_and_log_panes_show_no_control_character() {
    let mut app = hostile_fleet();
    let job = fixture::job(1, fixture::numbered_request(&[]), "", 0, None);
    for evil in HOSTILE {
        rbtop::jobs::runner::lock(&job).log.push(LogLine {
            drv: None,
            kind: LineKind::Build,
            text: evil.to_string(),
        });
    }
    app.launched(Ok(job));
    assert_clean(&mut app, "jobs");
    fixture::press(&mut app, "l");
    assert_clean(&mut app, "log");
}
