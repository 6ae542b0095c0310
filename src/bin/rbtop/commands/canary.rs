//! `rbtop check --build`: the canary build on every host that is up, and
//! how its results are shown (table lines, the JSON `canary` object).

use std::time::Duration;

use serde::Serialize;

use rbtop::canary::{self, CanaryResult, CanarySettings, CanaryStatus};
use rbtop::machines::Machine;
use rbtop::probe::HostReport;
use rbtop::sanitize::{for_terminal, for_terminal_lines};

/// A host's `"canary"` in `rbtop check --build --json`; field names and
/// order are a stable interface.
#[derive(Debug, Serialize)]
pub struct CanaryJson<'a> {
    pub status: CanaryStatus,
    pub reason: Option<&'static str>,
    pub message: Option<&'a str>,
    pub upload_ms: Option<f64>,
    pub build_ms: Option<f64>,
    pub download_ms: Option<f64>,
    pub total_ms: Option<f64>,
}

fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
}

impl<'a> CanaryJson<'a> {
    pub fn of(result: &'a CanaryResult) -> CanaryJson<'a> {
        CanaryJson {
            status: result.status,
            reason: result.reason.map(|r| r.name()),
            message: result.message.as_deref(),
            upload_ms: millis(result.upload),
            build_ms: millis(result.build),
            download_ms: millis(result.download),
            total_ms: millis(result.total),
        }
    }
}

/// Run the canaries of the hosts found up; `None` when the runtime could
/// not start (said on stderr).
pub fn run(
    canary_settings: &CanarySettings,
    machines: &[Machine],
    reports: &[HostReport],
) -> Option<Vec<CanaryResult>> {
    let eligible: Vec<Option<String>> = reports
        .iter()
        .map(|r| (!r.is_up()).then(|| format!("host is not up ({})", r.status.name())))
        .collect();
    let runtime = crate::setup::runtime()?;
    Some(runtime.block_on(canary::run_fleet(
        machines,
        &eligible,
        canary_settings,
        async {
            crate::signals::shutdown_signal().await;
            say!("rbtop: interrupted; cancelling the canary builds");
        },
    )))
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0}ms", d.as_secs_f64() * 1e3))
}

/// The lines after the check table: one per host, a fix under each failure.
pub fn render(machines: &[Machine], results: &[CanaryResult], via_daemon: bool) -> String {
    let mut out = String::from(if via_daemon {
        "\ncanary builds (through the local nix-daemon: root's SSH identity and known_hosts):\n"
    } else {
        "\ncanary builds (by this process's own Nix, with this user's SSH identity and known_hosts):\n"
    });
    for (m, r) in machines.iter().zip(results) {
        let host = for_terminal(m.host_name());
        let message = for_terminal_lines(r.message.as_deref().unwrap_or(""));
        match r.status {
            CanaryStatus::Ok => out.push_str(&format!(
                "{host}: ok in {} (upload {}, build {}, copy back {}): {message}\n",
                ms(r.total),
                ms(r.upload),
                ms(r.build),
                ms(r.download)
            )),
            CanaryStatus::Failed => {
                let reason = r.reason.map_or("?", |c| c.name());
                let mut lines = message.lines();
                out.push_str(&format!(
                    "{host}: failed ({reason}): {}\n",
                    lines.next().unwrap_or("")
                ));
                for line in lines {
                    out.push_str(&format!("  {line}\n"));
                }
                if let Some(fix) = r.fix() {
                    out.push_str(&format!("  fix: {fix}\n"));
                }
                if let Some(log) = &r.log_file {
                    let log = log.display().to_string();
                    out.push_str(&format!("  log: {}\n", for_terminal(&log)));
                }
            }
            CanaryStatus::Skipped => out.push_str(&format!("{host}: skipped: {message}\n")),
        }
    }
    let ok = results
        .iter()
        .filter(|r| r.status == CanaryStatus::Ok)
        .count();
    let tried = results.iter().filter(|r| r.tried()).count();
    out.push_str(&format!("{ok} of {tried} canaries built\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::machines;
    use super::*;
    use rbtop::canary::FailureClass;

    fn results() -> Vec<CanaryResult> {
        let ok = CanaryResult {
            status: CanaryStatus::Ok,
            reason: None,
            message: Some("built /nix/store/aaaa-rbtop-canary on ssh://b1".into()),
            upload: Some(Duration::from_millis(120)),
            build: Some(Duration::from_millis(80)),
            download: Some(Duration::from_millis(60)),
            total: Some(Duration::from_micros(512_340)),
            output: Some("/nix/store/aaaa-rbtop-canary".into()),
            built_on: Some("ssh://b1".into()),
            log_file: None,
        };
        let failed = CanaryResult {
            status: CanaryStatus::Failed,
            reason: Some(FailureClass::NotTrusted),
            message: Some(
                "error: you are not privileged to build input-addressed derivations".into(),
            ),
            total: Some(Duration::from_millis(300)),
            upload: None,
            build: None,
            download: None,
            output: None,
            built_on: Some("ssh://nixremote@untrusted".into()),
            log_file: None,
        };
        vec![
            ok,
            failed,
            CanaryResult::skipped("host is not up (refused)"),
        ]
    }

    #[test]
    fn json_shape() {
        let json: Vec<serde_json::Value> = results()
            .iter()
            .map(|r| serde_json::to_value(CanaryJson::of(r)).unwrap())
            .collect();
        assert_eq!(
            json[0],
            serde_json::json!({"status": "ok", "reason": null,
                "message": "built /nix/store/aaaa-rbtop-canary on ssh://b1",
                "upload_ms": 120.0, "build_ms": 80.0, "download_ms": 60.0, "total_ms": 512.3})
        );
        assert_eq!(json[1]["status"], "failed");
        assert_eq!(json[1]["reason"], "not-trusted");
        assert_eq!(json[1]["upload_ms"], serde_json::Value::Null);
        assert_eq!(json[2]["status"], "skipped");
        assert_eq!(json[2]["total_ms"], serde_json::Value::Null);
    }

    #[test]
    fn lines_say_the_stages_the_class_and_the_fix() {
        let m = machines("ssh://b1\nssh://nixremote@untrusted\nssh://refused");
        let text = render(&m, &results(), true);
        assert!(text.contains("through the local nix-daemon"), "{text}");
        assert!(
            text.contains("b1: ok in 512ms (upload 120ms, build 80ms, copy back 60ms): built /nix/store/aaaa-rbtop-canary on ssh://b1"),
            "{text}"
        );
        assert!(
            text.contains("untrusted: failed (not-trusted): error: you are not privileged"),
            "{text}"
        );
        assert!(
            text.contains("  fix: add the remote user to `trusted-users`"),
            "{text}"
        );
        assert!(
            text.contains("refused: skipped: host is not up (refused)"),
            "{text}"
        );
        assert!(text.ends_with("1 of 2 canaries built\n"), "{text}");
    }
}
