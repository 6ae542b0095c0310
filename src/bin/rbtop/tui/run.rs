//! The event loop: keys, mouse, resizes, probe results, job changes, the
//! refresh schedule and signals, one `select!`. A frame is drawn only after
//! something changed; probe results and job changes are drained once per
//! frame. Launching and cancelling builds happen here, asked for by the app.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::app::{App, AppEffect};
use super::canaries::Canaries;
use super::side_checks::SideChecks;
use super::terminal::{self, Tui};
use super::view;
use crate::signals::Interrupted;
use rbtop::dashboard::{Finished, Refresher};
use rbtop::jobs::job::JobId;
use rbtop::jobs::runner::Supervisor;
use rbtop::probe::Fleet;
use rbtop::remote_builds::{self, KillOutcome};

/// How the dashboard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DashboardEnd {
    /// The operator quit.
    Quit,
    /// A signal: its exit status (128 + number).
    Signal(u8),
}

/// The builds: who runs them, and its "this job changed" channel; and the
/// canary builds.
pub struct Builds<'a> {
    pub supervisor: &'a mut Supervisor,
    pub changed: &'a mut mpsc::UnboundedReceiver<JobId>,
    pub canaries: &'a mut Canaries,
    /// The substituters and root's view of the hosts, re-checked on `r`.
    pub side_checks: &'a mut SideChecks,
}

/// Run until quit or `interrupt` (a signal) resolves. `slots_dir` is the
/// build hook's `current-load` directory. Quitting with builds running
/// cancels them and returns once the last has ended; after a signal or an
/// error the caller must still shut the supervisor down.
pub async fn run(
    terminal: &mut Tui,
    app: &mut App,
    fleet: &Fleet,
    builds: Builds<'_>,
    slots_dir: &Path,
    interrupt: impl Future<Output = Interrupted>,
) -> io::Result<DashboardEnd> {
    let Builds {
        supervisor,
        changed,
        canaries,
        side_checks,
    } = builds;
    tokio::pin!(interrupt);
    let mut input = EventStream::new();
    // The clock tick: local slots are re-read and a countdown redrawn, at most once a second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);

    // Read each tick; cloned once rather than per tick.
    let machines: Vec<_> = app.fleet.hosts.iter().map(|h| h.machine.clone()).collect();
    let mut refresher = Refresher::new(fleet, machines.clone(), slots_dir.to_path_buf());
    let (kill_outcomes, mut killed) = mpsc::unbounded_channel::<(usize, KillOutcome)>();
    // The first frame, before any probe can have finished.
    app.on_load(refresher.load().clone());
    draw(terminal, app)?;
    refresher.start_due(&mut app.fleet, false);

    // Results come in bursts (every host answers within a few ms of the
    // others): they are drawn together, at most one frame per batch window.
    let mut draw_due: Option<tokio::time::Instant> = None;
    loop {
        let wake = Refresher::wake(&app.fleet);
        let redraw = tokio::select! {
            batch = refresher.next_batch() => {
                for Finished { event, builds } in batch.finished {
                    let index = event.index;
                    app.on_probe(event, batch.stamp);
                    app.on_builds(index, builds, Instant::now());
                }
                Redraw::Soon
            }
            Some((host, outcome)) = killed.recv() => {
                app.on_kill_outcome(host, outcome);
                // See what is left at once.
                if let Some(state) = app.fleet.hosts.get_mut(host) {
                    state.next_probe = Some(Instant::now());
                }
                refresher.start_due(&mut app.fleet, false);
                Redraw::Now
            }
            Some(result) = side_checks.next() => {
                app.on_side_result(result);
                Redraw::Soon
            }
            Some((host, result)) = canaries.next() => {
                app.on_canary(host, result);
                Redraw::Soon
            }
            Some(_) = changed.recv() => {
                while changed.try_recv().is_ok() {}
                app.on_jobs_changed();
                if app.shutting_down.is_some() {
                    let active = supervisor.active();
                    if active == 0 {
                        return Ok(DashboardEnd::Quit);
                    }
                    app.shutting_down = Some(active);
                }
                Redraw::Soon
            }
            () = sleep_until_some(draw_due) => Redraw::Now,
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    injected_panic(&key);
                    match app.on_key(key) {
                        AppEffect::Quit => {
                            // Canaries are cancelled and waited for at shutdown.
                            if supervisor.cancel_all() == 0 {
                                return Ok(DashboardEnd::Quit);
                            }
                            app.shutting_down = Some(supervisor.active());
                        }
                        AppEffect::Refresh => {
                            refresher.start_due(&mut app.fleet, true);
                            side_checks.start();
                        }
                        AppEffect::Launch(request) => {
                            let launched = supervisor
                                .launch(request)
                                .map(|id| supervisor.job(id).expect("just launched").clone());
                            app.launched(launched);
                        }
                        AppEffect::Cancel(id) => {
                            supervisor.cancel(id);
                        }
                        AppEffect::KillBuild { host, build } => {
                            let machine = machines[host].clone();
                            let ssh = fleet.settings().ssh.clone();
                            let outcomes = kill_outcomes.clone();
                            // Connecting and waiting for the group to die take
                            // seconds: never in the loop itself.
                            tokio::spawn(async move {
                                let outcome = remote_builds::kill(&machine, &build, &ssh).await;
                                tracing::info!(host = %machine.uri(), pid = build.pid, ?outcome, "kill asked with K");
                                let _ = outcomes.send((host, outcome));
                            });
                        }
                        AppEffect::FollowLog(found) => {
                            let id = supervisor.follow_log(found);
                            app.following(supervisor.job(id).expect("just opened").clone());
                        }
                        AppEffect::Canary(hosts) => canaries.start(hosts),
                        AppEffect::None => {}
                    }
                    Redraw::Now
                }
                Some(Ok(Event::Mouse(mouse))) if app.on_mouse(mouse) => Redraw::Now,
                Some(Ok(Event::Resize(..))) => Redraw::Now,
                Some(Ok(_)) => Redraw::No,
                // The terminal is gone (its window closed): as a hangup.
                Some(Err(e)) => {
                    tracing::warn!("terminal input failed: {e}");
                    return Ok(DashboardEnd::Signal(129));
                }
                None => return Ok(DashboardEnd::Signal(129)),
            },
            _ = tokio::time::sleep_until(wake) => {
                refresher.start_due(&mut app.fleet, false);
                // Only the detail pane shows that a probe is running.
                if app.detail_open { Redraw::Soon } else { Redraw::No }
            }
            _ = tick.tick() => {
                side_checks.start_if_due();
                let changed = app.on_load(refresher.read_load().clone());
                // The detail pane's countdown and running jobs' times move every second.
                if changed || app.detail_open || app.jobs.any_active() {
                    Redraw::Now
                } else {
                    Redraw::No
                }
            }
            signal = &mut interrupt => return Ok(DashboardEnd::Signal(signal.exit_status())),
        };
        if terminal::panicked() {
            return Err(io::Error::other(
                "internal error (the panic is reported above and in the log)",
            ));
        }
        match redraw {
            Redraw::Now => {
                draw(terminal, app)?;
                draw_due = None;
            }
            Redraw::Soon => {
                draw_due.get_or_insert_with(|| tokio::time::Instant::now() + RESULT_BATCH);
            }
            Redraw::No => {}
        }
    }
}

/// How long results are gathered before they are drawn.
const RESULT_BATCH: Duration = Duration::from_millis(50);

enum Redraw {
    /// Input or a tick: the operator is looking, draw at once.
    Now,
    /// A result: draw within [`RESULT_BATCH`], with whatever else arrives.
    Soon,
    No,
}

/// Sleep until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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

fn draw(terminal: &mut Tui, app: &mut App) -> io::Result<()> {
    view::draw(terminal, app, Instant::now())
}
