//! The explain pane rendered on ratatui's TestBackend over the dashboard's
//! fixed fleet (crate::tui::fixture), compared with reviewed snapshots
//! (tests/snapshots, where they were reviewed), at 120x30 and 80x24.

use crate::tui::panes::explain::state::observations;
use crate::tui::panes::explain::{self, ExplainPane};
use crate::tui::{App, fixture};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rbtop::explain::ImpliedFeature;
use rbtop::explain::{Inputs, Requirement, Subject, explain};
use rbtop::nix_version::NixVersion;

use super::SNAPSHOTS;

const SIZES: [(u16, u16); 2] = [(120, 30), (80, 24)];

const NIX_2_8: Option<NixVersion> = Some(NixVersion::new(2, 8, 0));

/// The pane over the mixed fleet after typing `line` and, if `enter`, Enter.
fn pane_after(app: &App, line: &str, enter: bool) -> ExplainPane {
    let mut pane = ExplainPane::new(NIX_2_8);
    let mut press = |code| {
        pane.on_key(
            KeyEvent::new(code, KeyModifiers::NONE),
            &app.fleet,
            &app.context.local,
        );
    };
    for c in line.chars() {
        press(KeyCode::Char(c));
    }
    if enter {
        press(KeyCode::Enter);
    }
    pane
}

fn snapshot(name: &str, make: impl Fn() -> ExplainPane) {
    for (width, height) in SIZES {
        let pane = make();
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| {
                explain::view::render(frame, frame.area(), &pane);
            })
            .unwrap();
        insta::with_settings!({
            snapshot_path => SNAPSHOTS,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend().to_string());
        });
    }
}

#[test]
fn before_the_first_enter() {
    snapshot("explain_empty", || {
        pane_after(&fixture::mixed_fleet(), "x86_64-linux kv", false)
    });
}

#[test]
fn a_system_over_the_mixed_fleet() {
    // Four down hosts score 0 and are tried first; b2 is full; b1 takes it.
    snapshot("explain_mixed", || {
        pane_after(&fixture::mixed_fleet(), "x86_64-linux", true)
    });
}

#[test]
fn nothing_eligible_is_up() {
    snapshot("explain_nothing_up", || {
        pane_after(&fixture::mixed_fleet(), "aarch64-linux", true)
    });
}

#[test]
fn scrolled_to_the_end() {
    snapshot("explain_scrolled", || {
        let app = fixture::mixed_fleet();
        let mut pane = pane_after(&app, "x86_64-linux", true);
        // Far past the end: the view stops at the last line.
        pane.scroll = 500;
        pane
    });
}

#[test]
fn an_unreadable_derivation() {
    snapshot("explain_error", || {
        pane_after(&fixture::mixed_fleet(), "/nonexistent/hello.drv", true)
    });
}

#[test]
fn a_derivation_with_an_implied_feature() {
    snapshot("explain_derivation", || {
        let app = fixture::mixed_fleet();
        let machines: Vec<_> = app.fleet.hosts.iter().map(|h| h.machine.clone()).collect();
        let (observed, slots_problem) = observations(&app.fleet);
        let mut pane = pane_after(&app, "/nix/store/0a1b2c-hello.drv", false);
        pane.result = Some(Ok(explain(Inputs {
            requirement: Requirement::new("x86_64-linux", ["ca-derivations", "kvm"]),
            subject: Subject::Derivation {
                path: "/nix/store/0a1b2c-hello.drv".into(),
                name: Some("hello".into()),
                prefer_local_build: false,
                implied: vec![ImpliedFeature {
                    feature: "ca-derivations".into(),
                    why: "an output's path is only known after the build (content-addressed)"
                        .into(),
                }],
            },
            machines: &machines,
            observed,
            slots_problem,
            local: &app.context.local,
            nix_version: NIX_2_8,
        })));
        pane
    });
}
