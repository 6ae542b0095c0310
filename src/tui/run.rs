//! The event loop: keys, mouse, resizes, probe results, the refresh
//! schedule and signals, one `select!`. A frame is drawn only after
//! something changed; probe results are drained once per frame.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::app::{App, Effect};
use super::terminal::{self, Tui};
use super::view;
use crate::dashboard::Stamp;
use crate::probe::{Fleet, ProbeEvent};
use crate::slots;

/// How the dashboard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The operator quit.
    Quit,
    /// A signal: its exit status (128 + number).
    Signal(u8),
}

/// Run until quit. `slots_dir` is the build hook's `current-load` directory.
pub async fn run(
    terminal: &mut Tui,
    app: &mut App,
    fleet: &Fleet,
    slots_dir: &Path,
) -> io::Result<Ended> {
    let (results, mut incoming) = mpsc::unbounded_channel::<ProbeEvent>();
    let mut input = EventStream::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    // The clock tick: local slots are re-read and a countdown redrawn, at most once a second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);

    // Read each tick; cloned once rather than per tick.
    let machines: Vec<_> = app.fleet.hosts.iter().map(|h| h.machine.clone()).collect();
    // The first frame, before any probe can have finished.
    app.on_load(slots::read(slots_dir, &machines));
    draw(terminal, app)?;
    start_probes(app, fleet, &results, false);

    loop {
        let wake = app
            .fleet
            .next_due()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let dirty = tokio::select! {
            Some(event) = incoming.recv() => {
                let stamp = Stamp::now();
                app.on_probe(event, stamp);
                while let Ok(event) = incoming.try_recv() {
                    app.on_probe(event, stamp);
                }
                true
            }
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    injected_panic(&key);
                    match app.on_key(key) {
                        Effect::Quit => return Ok(Ended::Quit),
                        Effect::Refresh => start_probes(app, fleet, &results, true),
                        Effect::None => {}
                    }
                    true
                }
                Some(Ok(Event::Mouse(mouse))) => app.on_mouse(mouse),
                Some(Ok(Event::Resize(..))) => true,
                Some(Ok(_)) => false,
                // The terminal is gone (its window closed): as a hangup.
                Some(Err(e)) => {
                    tracing::warn!("terminal input failed: {e}");
                    return Ok(Ended::Signal(129));
                }
                None => return Ok(Ended::Signal(129)),
            },
            _ = tokio::time::sleep_until(wake) => {
                start_probes(app, fleet, &results, false);
                true
            }
            _ = tick.tick() => {
                let load = slots::read(slots_dir, &machines);
                let before: Vec<_> = app.fleet.hosts.iter().map(|h| h.load.clone()).collect();
                let problem = app.fleet.load_problem.clone();
                app.on_load(load);
                let changed = app.fleet.hosts.iter().map(|h| &h.load).ne(before.iter())
                    || problem != app.fleet.load_problem;
                changed || app.detail_open
            }
            _ = term.recv() => return Ok(Ended::Signal(143)),
            _ = hup.recv() => return Ok(Ended::Signal(129)),
            _ = int.recv() => return Ok(Ended::Signal(130)),
        };
        if terminal::panicked() {
            return Err(io::Error::other(
                "internal error (the panic is reported above and in the log)",
            ));
        }
        if dirty {
            draw(terminal, app)?;
        }
    }
}

/// Debug builds only: `RBTOP_TEST_PANIC_KEY=P` makes that key panic, so the
/// end-to-end tests can check the terminal is restored and the sessions
/// closed after a panic. Release builds have no such key.
fn injected_panic(key: &crossterm::event::KeyEvent) {
    if cfg!(debug_assertions)
        && let crossterm::event::KeyCode::Char(c) = key.code
        && std::env::var("RBTOP_TEST_PANIC_KEY").is_ok_and(|k| k == c.to_string())
    {
        panic!("test panic requested with the '{c}' key (RBTOP_TEST_PANIC_KEY)");
    }
}

fn start_probes(
    app: &mut App,
    fleet: &Fleet,
    results: &mpsc::UnboundedSender<ProbeEvent>,
    force: bool,
) {
    let now = Instant::now();
    let due = app.fleet.due(now, force);
    if due.is_empty() {
        return;
    }
    app.fleet.start_probes(&due, now, force);
    fleet.probe_hosts(&due, results);
}

fn draw(terminal: &mut Tui, app: &mut App) -> io::Result<()> {
    let now = Instant::now();
    terminal.draw(|frame| view::render(frame, app, now))?;
    Ok(())
}
