//! What `rbtop check` says of each builder's own substituters, when this
//! machine's Nix has `builders-use-substitutes`: checked on their own
//! thread, beside the probe (in its wall time, not after it), on every
//! builder reached over SSH; said for the builders the probe found up (a
//! host that is down already says why).

use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use rbtop::machines::Machine;
use rbtop::probe::{HostReport, ProbeSettings};
use rbtop::sanitize::for_terminal;
use rbtop::substituters::from_builder::{self, Outcome};

use super::substituters::SubstituterJson;
use crate::signals::{Interrupted, SignalLatch};

pub struct Pending {
    thread: JoinHandle<()>,
    done: tokio::sync::oneshot::Receiver<Vec<Option<Outcome>>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Start checking, from each builder reached over SSH, the substituters
/// its Nix uses, each ping within the probe's timeout.
pub fn start(machines: &[Machine], settings: &ProbeSettings) -> Pending {
    let machines = machines.to_vec();
    let wanted: Vec<bool> = machines.iter().map(|m| m.store.is_ssh()).collect();
    let settings = settings.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (finished, done) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        let Some(runtime) = crate::setup::runtime() else {
            let _ = finished.send(Vec::new());
            return;
        };
        let stopped = async {
            let _ = stopped.await;
        };
        let outcomes = runtime
            .block_on(from_builder::check_on_each(
                &machines,
                &wanted,
                &settings,
                stopped,
                |_, _| {},
            ))
            .unwrap_or_default();
        let _ = finished.send(outcomes);
    });
    Pending { thread, done, stop }
}

impl Pending {
    /// The outcomes of the hosts `reports` found up (others: `None`); a
    /// signal meanwhile stops the checks (sessions closed) and is returned.
    pub fn finish(
        self,
        reports: &[HostReport],
        signals: &SignalLatch,
    ) -> Result<Vec<Option<Outcome>>, Interrupted> {
        let Pending { thread, done, stop } = self;
        let waited = match crate::setup::runtime() {
            Some(runtime) => runtime.block_on(async {
                tokio::select! {
                    biased;
                    signal = signals.wait() => Err(signal),
                    outcomes = done => Ok(outcomes.unwrap_or_default()),
                }
            }),
            None => Ok(Vec::new()),
        };
        if waited.is_err() {
            let _ = stop.send(());
        }
        let _ = thread.join();
        let mut outcomes = waited?;
        for (outcome, report) in outcomes.iter_mut().zip(reports) {
            if !report.is_up() {
                *outcome = None;
            }
        }
        Ok(outcomes)
    }

    /// Stop it, SSH sessions closed, and wait for that.
    pub fn cancel(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// A host's `"builder_substituters"` in `rbtop check --json`.
#[derive(Debug, Serialize)]
pub struct BuilderSubstitutersJson<'a> {
    /// Why the builder could not say (then `substituters` is empty).
    pub error: Option<&'a str>,
    pub substituters: Vec<SubstituterJson<'a>>,
    /// Substituters past rbtop's bound, not pinged.
    pub not_checked: usize,
}

impl<'a> BuilderSubstitutersJson<'a> {
    pub fn of(outcome: &'a Outcome) -> BuilderSubstitutersJson<'a> {
        match outcome {
            Ok(found) => BuilderSubstitutersJson {
                error: None,
                substituters: found.checks.iter().map(SubstituterJson::of).collect(),
                not_checked: found.not_checked,
            },
            Err(why) => BuilderSubstitutersJson {
                error: Some(why),
                substituters: Vec::new(),
                not_checked: 0,
            },
        }
    }
}

/// The lines after the substituters': a line per builder checked, and a
/// line per substituter it cannot use.
pub fn render(machines: &[Machine], outcomes: &[Option<Outcome>]) -> String {
    let checked: Vec<(&Machine, &Outcome)> = machines
        .iter()
        .zip(outcomes)
        .filter_map(|(m, o)| o.as_ref().map(|o| (m, o)))
        .collect();
    if checked.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("\nsubstituters as each builder reaches them (builders-use-substitutes):\n");
    for (machine, outcome) in checked {
        let host = for_terminal(machine.host_name());
        match outcome {
            Err(why) => out.push_str(&format!("{host}: not checked: {}\n", for_terminal(why))),
            Ok(found) if found.checks.is_empty() && found.not_checked == 0 => {
                out.push_str(&format!("{host}: none configured\n"));
            }
            Ok(found) => {
                let more = match found.not_checked {
                    0 => String::new(),
                    n => format!(", {n} more not checked"),
                };
                out.push_str(&format!(
                    "{host}: {} of {} usable{more}\n",
                    found.usable(),
                    found.checks.len()
                ));
                for check in found.checks.iter().filter(|c| !c.is_up()) {
                    out.push_str(&format!(
                        "  {}: {} after {}: {}\n",
                        for_terminal(&check.uri),
                        check.status,
                        ms(check.elapsed),
                        for_terminal(check.reason.as_deref().unwrap_or(""))
                    ));
                }
            }
        }
    }
    out
}

fn ms(elapsed: Duration) -> String {
    format!("{:.0}ms", elapsed.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use rbtop::substituters::from_builder::BuilderSubstituters;

    use super::super::substituters::tests::check;
    use super::super::testing::machines;
    use super::*;

    #[test]
    fn each_builder_checked_gets_a_line_and_each_unusable_cache_one_more() {
        let machines = machines("ssh://b1\nssh://b2\nssh://down\nssh://b3?x=\x1b[2J");
        assert_eq!(machines.len(), 4);
        let outcomes = [
            Some(Ok(BuilderSubstituters {
                checks: vec![
                    check("http://c1", "up", None),
                    check(
                        "http://c2\x1b]0;x\x07",
                        "unreachable",
                        Some("Couldn't connect \x1b[31m"),
                    ),
                ],
                not_checked: 3,
            })),
            Some(Ok(BuilderSubstituters {
                checks: Vec::new(),
                not_checked: 0,
            })),
            None,
            Some(Err("cannot connect: timed out".to_string())),
        ];
        let text = render(&machines, &outcomes);
        assert!(
            text.contains("b1: 1 of 2 usable, 3 more not checked\n"),
            "{text}"
        );
        assert!(text.contains("  http://c2"), "{text}");
        assert!(
            text.contains(": unreachable after 12ms: Couldn't connect"),
            "{text}"
        );
        assert!(text.contains("b2: none configured\n"), "{text}");
        assert!(!text.contains("down"), "not checked, not said: {text}");
        assert!(
            text.contains(": not checked: cannot connect: timed out"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "sanitised: {text:?}");
        assert_eq!(render(&machines, &[None, None, None, None]), "");
        let json = serde_json::to_value(BuilderSubstitutersJson::of(outcomes[0].as_ref().unwrap()))
            .unwrap();
        assert_eq!(json["error"], serde_json::Value::Null);
        assert_eq!(json["not_checked"], 3);
        assert_eq!(json["substituters"][1]["status"], "unreachable");
        let json = serde_json::to_value(BuilderSubstitutersJson::of(outcomes[3].as_ref().unwrap()))
            .unwrap();
        assert_eq!(json["error"], "cannot connect: timed out");
    }
}
