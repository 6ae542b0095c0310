//! The one-page HTML status view of `rbtop serve`: the same data as the
//! metrics, for a person. Every piece of text is escaped here, whatever
//! was done to it before: host names, reasons and versions come from
//! machines files and from builders.

use std::fmt::Write;
use std::path::Path;

use rbtop::dashboard::FleetState;
use rbtop::export::{BuilderSample, one_line};

/// The longest reason shown in a cell.
const REASON_CHARS: usize = 300;

pub fn render(state: &FleetState, samples: &[BuilderSample], live: Option<&Path>) -> String {
    let summary = state.summary();
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rbtop</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}\
         .up{color:green}.down{color:#b00}</style></head><body>\n<h1>rbtop</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>{} builder(s): {} up, {} down, {} not probed yet. <a href=\"/metrics\">metrics</a></p>",
        summary.total, summary.up, summary.down, summary.probing
    );
    if let Some(path) = live {
        let _ = writeln!(
            html,
            "<p>Live machines file: <code>{}</code></p>",
            escape(&path.display().to_string())
        );
    }
    html.push_str(
        "<table>\n<tr><th>host</th><th>uri</th><th>status</th><th>reason</th><th>nix</th>\
         <th>load1</th><th>store free</th><th>builds</th><th>in live file</th></tr>\n",
    );
    for (host, sample) in state.hosts.iter().zip(samples) {
        let report = host.report.as_ref();
        let (class, status) = match report {
            Some(r) if r.is_up() => ("up", "up"),
            Some(r) => ("down", r.status.name()),
            None => ("", "probing"),
        };
        let reason = report
            .and_then(|r| r.reason.as_deref())
            .map(|r| one_line(r, REASON_CHARS))
            .unwrap_or_default();
        let nix = report
            .and_then(|r| r.nix_version.as_deref())
            .unwrap_or_default();
        let facts = report.and_then(|r| r.facts.as_ref());
        let load = facts
            .and_then(|f| f.load)
            .map(|l| format!("{:.2}", l[0]))
            .unwrap_or_default();
        let free = host
            .store_free()
            .map(|b| humansize::format_size(b, humansize::BINARY))
            .unwrap_or_default();
        let builds = sample
            .builds
            .map(|b| b.len().to_string())
            .unwrap_or_default();
        let kept = match sample.live_kept {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{status}</td><td>{}</td>\
             <td>{}</td><td>{load}</td><td>{free}</td><td>{builds}</td><td>{kept}</td></tr>",
            escape(host.name()),
            escape(host.machine.uri()),
            escape(&reason),
            escape(nix),
        );
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

/// Text for HTML content or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbtop::probe::{HostReport, ProbeEvent, Status, Via};

    #[test]
    fn everything_from_outside_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\"\n"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot; "
        );
        let machines = crate::commands::testing::machines("ssh://b1");
        let mut state = FleetState::new(machines, rbtop::dashboard::DEFAULT_REFRESH);
        state.start_probes(&[0], std::time::Instant::now(), false);
        state.apply(
            ProbeEvent {
                index: 0,
                report: HostReport::failed(Status::Error, Via::Ssh, "<script>alert(1)</script>"),
                elapsed: std::time::Duration::from_millis(1),
            },
            rbtop::dashboard::Stamp::now(),
        );
        let samples: Vec<_> = state.hosts.iter().map(BuilderSample::of_host).collect();
        let html = render(&state, &samples, Some(Path::new("/run/<x>")));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("/run/&lt;x&gt;"));
        assert!(html.contains("class=\"down\">error"));
    }
}
