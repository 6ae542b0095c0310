//! `rbtop check [--json]`: probe every machine at once and say, per host,
//! whether its store answers and, if not, why.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{Cell, Color};
use humansize::{BINARY, format_size};
use serde::Serialize;

use crate::machines::Machine;
use crate::probe::{Facts, Fleet, HostReport, ProbeSettings, Status, Via};

/// Exit status when every host is up.
pub const ALL_UP: u8 = 0;
/// Exit status when any host is not up, a machines line was rejected, or there are no machines.
pub const NOT_ALL_UP: u8 = 1;

/// The `--json` document. Field order and names are a stable interface.
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub hosts: Vec<HostJson<'a>>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct HostJson<'a> {
    pub uri: &'a str,
    pub host: &'a str,
    pub status: Status,
    pub reason: Option<&'a str>,
    pub connect_ms: Option<f64>,
    pub handshake_ms: Option<f64>,
    pub protocol_version: Option<&'a str>,
    pub nix_version: Option<&'a str>,
    pub trusted: Option<bool>,
    pub systems: &'a [String],
    pub max_jobs: u32,
    pub speed_factor: f64,
    pub supported_features: &'a [String],
    pub mandatory_features: &'a [String],
    pub facts: Option<&'a Facts>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub total: usize,
    pub up: usize,
}

/// The host column: the URI's host, or the URI itself for stores without one
/// (`local`, `daemon`, `unix:///path`).
pub fn host_of(machine: &Machine) -> &str {
    machine
        .store
        .host
        .as_deref()
        .unwrap_or(machine.store.uri.as_str())
}

/// Milliseconds with one decimal, as the JSON shows them.
fn millis(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
}

pub fn report<'a>(machines: &'a [Machine], reports: &'a [HostReport]) -> CheckReport<'a> {
    let hosts: Vec<HostJson> = machines
        .iter()
        .zip(reports)
        .map(|(m, r)| HostJson {
            uri: &m.store.uri,
            host: host_of(m),
            status: r.status,
            reason: r.reason.as_deref(),
            connect_ms: millis(r.connect),
            handshake_ms: millis(r.handshake),
            protocol_version: r.protocol_version.as_deref(),
            nix_version: r.nix_version.as_deref(),
            trusted: r.trusted,
            systems: &m.systems,
            max_jobs: m.max_jobs,
            speed_factor: m.speed_factor,
            supported_features: &m.supported_features,
            mandatory_features: &m.mandatory_features,
            facts: r.facts.as_ref(),
        })
        .collect();
    let up = reports.iter().filter(|r| r.is_up()).count();
    CheckReport {
        summary: Summary {
            total: hosts.len(),
            up,
        },
        hosts,
    }
}

pub fn render_json(machines: &[Machine], reports: &[HostReport]) -> String {
    serde_json::to_string_pretty(&report(machines, reports)).expect("plain data serialises")
}

/// Colour for a status word (the word itself always says it: never colour alone).
fn status_color(status: Status) -> Color {
    match status {
        Status::Up => Color::Green,
        Status::Timeout => Color::Yellow,
        _ => Color::Red,
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn ms_cell(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.0}ms", d.as_secs_f64() * 1e3),
        None => "-".into(),
    }
}

fn bytes(n: Option<u64>) -> String {
    n.map_or("-".into(), |n| format_size(n, BINARY))
}

/// The human table, hosts in machines-file order, then one line per failure.
pub fn render_table(machines: &[Machine], reports: &[HostReport], color: bool) -> String {
    let mut table = super::plain_table();
    table.set_header([
        "HOST",
        "STATUS",
        "CONNECT",
        "HANDSHAKE",
        "PROTO",
        "NIX",
        "TRUSTED",
        "SYSTEMS",
        "JOBS",
        "SPEED",
        "LOAD/CPU",
        "MEM FREE",
        "STORE FREE",
    ]);
    if color {
        table.enforce_styling();
    }
    for (m, r) in machines.iter().zip(reports) {
        let status = Cell::new(r.status.name());
        let status = if color {
            status.fg(status_color(r.status))
        } else {
            status
        };
        let facts = r.facts.as_ref();
        table.add_row([
            Cell::new(host_of(m)),
            status,
            Cell::new(ms_cell(r.connect)),
            Cell::new(ms_cell(r.handshake)),
            Cell::new(r.protocol_version.as_deref().unwrap_or("-")),
            Cell::new(r.nix_version.as_deref().unwrap_or("-")),
            Cell::new(match r.trusted {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }),
            Cell::new(super::machines::or_dash(&m.systems)),
            Cell::new(m.max_jobs),
            Cell::new(m.speed_factor),
            Cell::new(
                facts
                    .and_then(Facts::load_per_cpu)
                    .map_or("-".into(), |l| format!("{l:.2}")),
            ),
            Cell::new(bytes(facts.and_then(|f| f.mem_available))),
            Cell::new(bytes(facts.and_then(|f| f.store_free))),
        ]);
    }
    let mut out = super::plain_table_text(&table);
    let up = reports.iter().filter(|r| r.is_up()).count();
    out.push_str(&format!("\n{up} of {} up\n", reports.len()));
    for (m, r) in machines.iter().zip(reports).filter(|(_, r)| !r.is_up()) {
        out.push_str(&format!(
            "{} ({}): {}: {}\n",
            host_of(m),
            m.location,
            r.status,
            r.reason.as_deref().unwrap_or("")
        ));
    }
    out
}

/// Probe every machine; `progress(done, total)` is called as reports arrive.
/// Returns the reports in machines order, or what `interrupt` gave if it
/// fired first. Sessions are closed either way.
pub async fn probe_fleet<I>(
    machines: &[Machine],
    settings: ProbeSettings,
    mut progress: impl FnMut(usize, usize),
    interrupt: impl std::future::Future<Output = I>,
) -> Result<Vec<HostReport>, I> {
    let fleet = Fleet::new(machines, settings);
    let mut events = fleet.probe_all();
    let mut reports: Vec<Option<HostReport>> = vec![None; machines.len()];
    let collect = async {
        let mut done = 0;
        while let Some(event) = events.recv().await {
            reports[event.index] = Some(event.report);
            done += 1;
            progress(done, machines.len());
        }
    };
    let interrupted = tokio::select! {
        () = collect => None,
        signal = interrupt => Some(signal),
    };
    fleet.close().await;
    match interrupted {
        Some(signal) => Err(signal),
        // A probe task that panicked sent nothing: say so for that host alone.
        None => Ok(reports
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    HostReport::failed(
                        Status::Error,
                        Via::Unsupported,
                        "the probe task failed (see the log)",
                    )
                })
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Origin;
    use crate::machines::{MachinesText, Parser};

    fn machines(text: &str) -> Vec<Machine> {
        let mut parser = Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
        parser.finish().machines
    }

    fn up() -> HostReport {
        HostReport {
            status: Status::Up,
            reason: None,
            via: Via::Ssh,
            connect: Some(Duration::from_micros(231_040)),
            handshake: Some(Duration::from_micros(3_149)),
            ping: Some(Duration::from_micros(240)),
            protocol_version: Some("2.7".into()),
            nix_version: Some("2.8.0".into()),
            trusted: None,
            facts: Some(Facts {
                arch: Some("x86_64".into()),
                kernel: Some("Linux 6.1.0".into()),
                cpus: Some(2),
                load: Some([0.1, 0.2, 0.3]),
                mem_total: Some(4 << 30),
                mem_available: Some(1 << 30),
                store_free: Some(10 << 30),
                uptime_s: Some(3600),
                nix_version: Some("2.8.0".into()),
            }),
            stderr: None,
        }
    }

    #[test]
    fn json_has_exactly_the_documented_shape() {
        let ms = machines("ssh://b1 x86_64-linux,i686-linux - 2 1 kvm big-parallel\nssh-ng://b2");
        let reports = [
            up(),
            HostReport::failed(
                Status::Refused,
                Via::Ssh,
                "ssh: connect to host b2 port 22: Connection refused",
            ),
        ];
        let text = render_json(&ms, &reports);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let host = &json["hosts"][0];
        // Key order as documented: sort the keys by where they first appear in the text.
        let first_host = &text[..text.find("\"ssh-ng://b2\"").unwrap()];
        let mut keys: Vec<&str> = host
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_by_key(|k| first_host.find(&format!("\"{k}\":")).unwrap());
        assert_eq!(
            keys,
            [
                "uri",
                "host",
                "status",
                "reason",
                "connect_ms",
                "handshake_ms",
                "protocol_version",
                "nix_version",
                "trusted",
                "systems",
                "max_jobs",
                "speed_factor",
                "supported_features",
                "mandatory_features",
                "facts"
            ]
        );
        assert_eq!(host["uri"], "ssh://b1");
        assert_eq!(host["host"], "b1");
        assert_eq!(host["status"], "up");
        assert_eq!(host["reason"], serde_json::Value::Null);
        assert_eq!(host["connect_ms"], 231.0);
        assert_eq!(host["handshake_ms"], 3.1);
        assert_eq!(host["protocol_version"], "2.7");
        assert_eq!(host["trusted"], serde_json::Value::Null);
        assert_eq!(
            host["systems"],
            serde_json::json!(["i686-linux", "x86_64-linux"])
        );
        assert_eq!(host["max_jobs"], 2);
        assert_eq!(host["speed_factor"], 1.0);
        assert_eq!(host["supported_features"], serde_json::json!(["kvm"]));
        assert_eq!(
            host["mandatory_features"],
            serde_json::json!(["big-parallel"])
        );
        let mut facts: Vec<&str> = host["facts"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        facts.sort_by_key(|k| first_host.find(&format!("\"{k}\":")).unwrap());
        assert_eq!(
            facts,
            [
                "arch",
                "kernel",
                "cpus",
                "load",
                "mem_total",
                "mem_available",
                "store_free",
                "uptime_s"
            ]
        );
        assert_eq!(host["facts"]["load"], serde_json::json!([0.1, 0.2, 0.3]));
        let down = &json["hosts"][1];
        assert_eq!(down["status"], "refused");
        assert_eq!(down["facts"], serde_json::Value::Null);
        assert_eq!(down["connect_ms"], serde_json::Value::Null);
        assert!(
            down["reason"]
                .as_str()
                .unwrap()
                .contains("Connection refused")
        );
        assert_eq!(json["summary"], serde_json::json!({"total": 2, "up": 1}));
    }

    #[test]
    fn table_keeps_file_order_and_explains_each_failure() {
        let ms = machines("ssh://b1\nssh://b2\nlocal");
        let reports = [
            HostReport::failed(
                Status::Timeout,
                Via::Ssh,
                "no answer within 3 s while connecting over SSH",
            ),
            up(),
            HostReport::failed(
                Status::Nonix,
                Via::LocalProcess,
                "cannot run local 'nix-store'",
            ),
        ];
        let table = render_table(&ms, &reports, false);
        let rows: Vec<&str> = table.lines().skip(1).take(3).collect();
        assert!(
            rows[0].starts_with("b1") && rows[0].contains("timeout"),
            "{table}"
        );
        assert!(
            rows[1].starts_with("b2") && rows[1].contains("up"),
            "{table}"
        );
        assert!(
            rows[1].contains("1 GiB") && rows[1].contains("10 GiB"),
            "{table}"
        );
        assert!(
            rows[2].starts_with("local") && rows[2].contains("nonix"),
            "{table}"
        );
        assert!(table.contains("1 of 3 up"), "{table}");
        assert!(
            table.contains(
                "b1 (--builders): timeout: no answer within 3 s while connecting over SSH"
            ),
            "{table}"
        );
        assert!(!table.contains('\x1b'), "no colour unless asked");
        assert!(render_table(&ms, &reports, true).contains('\x1b'));
    }
}
