//! The dashboard's views rendered on ratatui's TestBackend and compared
//! with reviewed snapshots (tests/snapshots), at 120x30 and 80x24. The
//! fixture's values are fixed; clock times and the retry countdown, which
//! depend on when and where the test runs, are filtered out.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rbtop::tui::action::Action;
use rbtop::tui::{App, fixture, view};

const SIZES: [(u16, u16); 2] = [(120, 30), (80, 24)];

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| view::render(frame, app, Instant::now()))
        .unwrap();
    terminal.backend().to_string()
}

/// Snapshot `make()`'s app at both sizes.
fn snapshot(name: &str, make: impl Fn() -> App) {
    for (width, height) in SIZES {
        let mut app = make();
        let screen = render(&mut app, width, height);
        insta::with_settings!({
            filters => vec![
                (r"\b\d\d:\d\d:\d\d\b", "[time]"),
                (r"next try in \d+s", "next try in [wait]"),
            ],
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
