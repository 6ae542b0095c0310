//! What `rbtop check` says of the substituters: checked on their own thread
//! beside the builders' probe, each within the probe's timeout, so a dead
//! cache never holds the builders' results back past that.

use std::thread::JoinHandle;

use serde::Serialize;

use rbtop::probe::ProbeSettings;
use rbtop::sanitize::for_terminal;
use rbtop::substituters::{self, Substituter, SubstituterCheck};

pub struct Pending {
    thread: JoinHandle<Vec<SubstituterCheck>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Start checking `list` (nothing to do: `None`).
pub fn start(list: Vec<Substituter>, settings: &ProbeSettings) -> Option<Pending> {
    if list.is_empty() {
        return None;
    }
    let settings = settings.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let Some(runtime) = crate::setup::runtime() else {
            return Vec::new();
        };
        let store_dir = rbtop::remote_builds::local_store_dir();
        let stopped = async {
            let _ = stopped.await;
        };
        let checks = runtime.block_on(substituters::check_all(
            &list,
            &settings,
            &store_dir.to_string_lossy(),
            stopped,
        ));
        // A name lookup still blocked in the resolver is not waited for.
        runtime.shutdown_background();
        checks.unwrap_or_default()
    });
    Some(Pending { thread, stop })
}

impl Pending {
    pub fn finish(self) -> Vec<SubstituterCheck> {
        self.thread.join().unwrap_or_default()
    }

    /// Stop it, SSH sessions closed, and wait for that.
    pub fn cancel(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// One entry of `"substituters"` in `rbtop check --json`.
#[derive(Debug, Serialize)]
pub struct SubstituterJson<'a> {
    pub uri: &'a str,
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub ms: f64,
    /// The cache's own Priority, when it says.
    pub priority: Option<u32>,
}

impl<'a> SubstituterJson<'a> {
    pub fn of(check: &'a SubstituterCheck) -> SubstituterJson<'a> {
        SubstituterJson {
            uri: &check.uri,
            status: check.status,
            reason: check.reason.as_deref(),
            ms: (check.elapsed.as_secs_f64() * 10_000.0).round() / 10.0,
            priority: check.priority,
        }
    }
}

/// The lines after the check table.
pub fn render(checks: &[SubstituterCheck]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let up = checks.iter().filter(|c| c.is_up()).count();
    let mut out = format!("\nsubstituters ({up} of {} usable):\n", checks.len());
    for c in checks {
        let ms = format!("{:.0}ms", c.elapsed.as_secs_f64() * 1e3);
        let priority = c
            .priority
            .map_or(String::new(), |p| format!(", priority {p}"));
        let uri = for_terminal(&c.uri);
        match &c.reason {
            None => out.push_str(&format!("{uri}: {} in {ms}{priority}\n", c.status)),
            Some(reason) => out.push_str(&format!(
                "{uri}: {} after {ms}: {}\n",
                c.status,
                for_terminal(reason)
            )),
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    pub(crate) fn check(uri: &str, status: &'static str, reason: Option<&str>) -> SubstituterCheck {
        SubstituterCheck {
            uri: uri.into(),
            status,
            reason: reason.map(str::to_string),
            elapsed: Duration::from_micros(12_340),
            priority: (status == "up").then_some(40),
        }
    }

    #[test]
    fn json_and_lines_say_each_substituter() {
        let checks = [
            check("http://127.0.0.1:8080", "up", None),
            check(
                "file:///srv/cache",
                "wrong-store-dir",
                Some(
                    "its StoreDir is /gnu/store, this machine's store is /nix/store: Nix will not use it",
                ),
            ),
        ];
        assert_eq!(
            serde_json::to_value(SubstituterJson::of(&checks[0])).unwrap(),
            serde_json::json!({"uri": "http://127.0.0.1:8080", "status": "up", "reason": null, "ms": 12.3, "priority": 40})
        );
        let text = render(&checks);
        assert!(text.contains("substituters (1 of 2 usable):"), "{text}");
        assert!(
            text.contains("http://127.0.0.1:8080: up in 12ms, priority 40\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "file:///srv/cache: wrong-store-dir after 12ms: its StoreDir is /gnu/store"
            ),
            "{text}"
        );
        assert_eq!(render(&[]), "");
    }
}
