//! The live machines file: the lines of the builders usable now, each as
//! written in its source, so that nix.conf's `builders = @FILE` stops
//! sending builds to dead ones. A host goes out after `out_after` failed
//! probes in a row and comes back after `back_after` good ones, so one
//! that flaps does not churn the file; one never seen up is out from its
//! first failure. Only machines that parsed can be kept: a bad line never
//! reaches the file.

use crate::machines::Machine;
use crate::probe::HostReport;

use super::one_line;

/// Out after this many failed probes in a row, back after this many good ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    pub out_after: u32,
    pub back_after: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            out_after: 2,
            back_after: 2,
        }
    }
}

/// Where one host stands, once it has had a first probe.
#[derive(Clone, Debug, PartialEq)]
struct Standing {
    kept: bool,
    /// Failed probes in a row (while kept) or good ones (while out).
    streak: u32,
    /// Why it is out, as of when it went out (so the file does not change
    /// with every probe's wording).
    why_out: Option<String>,
}

/// What the file should hold now.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveFile {
    /// Some host has not had its first probe: nothing is written yet.
    NotYet,
    /// Every builder is out: keep the last file (Nix with no builders
    /// would build everything locally).
    AllDown,
    Text(String),
}

/// The longest reason quoted in a comment.
const REASON_CHARS: usize = 200;

#[derive(Clone, Debug)]
pub struct LiveMachines {
    rule: Hysteresis,
    hosts: Vec<Option<Standing>>,
}

impl LiveMachines {
    pub fn new(hosts: usize, rule: Hysteresis) -> LiveMachines {
        LiveMachines {
            rule,
            hosts: vec![None; hosts],
        }
    }

    /// Take one finished probe of host `index`. Returns whether the host
    /// went in or out.
    pub fn observe(&mut self, index: usize, report: &HostReport) -> bool {
        let Some(slot) = self.hosts.get_mut(index) else {
            return false;
        };
        let why = || {
            let reason = report.reason.as_deref().unwrap_or_default();
            one_line(&format!("{}: {reason}", report.status), REASON_CHARS)
        };
        let up = report.is_up();
        let Some(standing) = slot else {
            *slot = Some(Standing {
                kept: up,
                streak: 0,
                why_out: (!up).then(|| format!("{} (first probe)", why())),
            });
            return true;
        };
        if standing.kept == up {
            standing.streak = 0; // the streak against its standing is broken
            return false;
        }
        standing.streak += 1;
        let needed = if standing.kept {
            self.rule.out_after
        } else {
            self.rule.back_after
        };
        if standing.streak < needed.max(1) {
            return false;
        }
        *standing = Standing {
            kept: up,
            streak: 0,
            why_out: (!up).then(|| format!("{} ({needed} failed probes in a row)", why())),
        };
        true
    }

    /// Whether the file keeps host `index`; `None` before its first probe.
    pub fn kept(&self, index: usize) -> Option<bool> {
        self.hosts.get(index)?.as_ref().map(|s| s.kept)
    }

    /// The file for `machines` (the same list, in the same order, as the
    /// indices given to [`LiveMachines::observe`]); `header` is a comment
    /// saying where it comes from.
    pub fn render(&self, machines: &[Machine], header: &str) -> LiveFile {
        if self.hosts.iter().any(Option::is_none) {
            return LiveFile::NotYet;
        }
        if !self.hosts.iter().flatten().any(|s| s.kept) {
            return LiveFile::AllDown;
        }
        let mut text = String::new();
        for line in header.lines() {
            text.push_str(&format!("# {}\n", comment_text(line)));
        }
        for (machine, standing) in machines.iter().zip(self.hosts.iter().flatten()) {
            // `line` never holds a newline (the grammar splits on them);
            // made sure anyway, as a second line would be a machine.
            let line = one_line(&machine.line, usize::MAX);
            if standing.kept {
                text.push_str(&line);
                text.push('\n');
            } else {
                let why = comment_text(standing.why_out.as_deref().unwrap_or("down"));
                text.push_str(&format!("# left out, {why}: {line}\n"));
            }
        }
        LiveFile::Text(text)
    }
}

/// Text for a comment that Nix skips whatever its version: one line, and
/// no `;`, which Nix 2.8 (and Lix) split entries on before cutting the
/// comment, so the rest would be read as a machine.
fn comment_text(text: &str) -> String {
    one_line(text, 400).replace(';', ",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::{MachinesText, Parser};
    use crate::probe::{Status, Via};

    fn machines(text: &str) -> Vec<Machine> {
        let mut parser = Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&MachinesText::whole(
            text,
            crate::diagnostics::Origin::BuildersFlag,
        ));
        parser.finish().machines
    }

    fn up() -> HostReport {
        let mut report = HostReport::failed(Status::Up, Via::Ssh, "");
        report.reason = None;
        report
    }

    fn down() -> HostReport {
        HostReport::failed(Status::Refused, Via::Ssh, "Connection refused\nssh: x")
    }

    const FLEET: &str = "ssh://a   x86_64-linux  -  4 ; b - - 2\nssh://c";

    fn kept_lines(file: &LiveFile) -> Vec<&str> {
        let LiveFile::Text(text) = file else {
            panic!("no file: {file:?}")
        };
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn nothing_is_written_until_every_host_had_a_first_probe() {
        let m = machines(FLEET);
        let mut live = LiveMachines::new(3, Hysteresis::default());
        live.observe(0, &up());
        live.observe(1, &up());
        assert_eq!(live.render(&m, "h"), LiveFile::NotYet);
        live.observe(2, &down());
        let file = live.render(&m, "from test");
        assert_eq!(
            kept_lines(&file),
            ["ssh://a   x86_64-linux  -  4", "b - - 2"]
        );
        let LiveFile::Text(text) = file else {
            unreachable!()
        };
        assert!(text.starts_with("# from test\n"));
        assert!(
            text.contains(
                "# left out, refused: Connection refused ssh: x (first probe): ssh://c\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn out_after_n_failures_and_back_after_m_goods_not_on_one_flap() {
        let m = machines(FLEET);
        let rule = Hysteresis {
            out_after: 2,
            back_after: 3,
        };
        let mut live = LiveMachines::new(3, rule);
        for i in 0..3 {
            live.observe(i, &up());
        }
        assert!(!live.observe(0, &down()), "one failure is a flap");
        assert!(!live.observe(0, &up()), "and the streak is broken");
        assert!(!live.observe(0, &down()));
        assert_eq!(live.kept(0), Some(true));
        assert!(live.observe(0, &down()), "two in a row: out");
        assert_eq!(kept_lines(&live.render(&m, "")), ["b - - 2", "ssh://c"]);
        assert!(!live.observe(0, &up()));
        assert!(!live.observe(0, &up()));
        assert_eq!(live.kept(0), Some(false));
        assert!(live.observe(0, &up()), "three good ones: back");
        assert_eq!(kept_lines(&live.render(&m, "")).len(), 3);
    }

    #[test]
    fn every_host_out_keeps_the_last_file() {
        let m = machines("ssh://a\nssh://b");
        let mut live = LiveMachines::new(2, Hysteresis::default());
        live.observe(0, &down());
        live.observe(1, &down());
        assert_eq!(live.render(&m, ""), LiveFile::AllDown);
        assert_eq!(
            LiveMachines::new(0, Hysteresis::default()).render(&[], ""),
            LiveFile::AllDown
        );
    }

    #[test]
    fn a_reason_cannot_smuggle_a_machine_line_into_the_file() {
        let m = machines("ssh://a\nssh://b");
        let mut live = LiveMachines::new(2, Hysteresis::default());
        live.observe(0, &up());
        live.observe(
            1,
            &HostReport::failed(Status::Error, Via::Ssh, "x\nssh://evil x86_64-linux"),
        );
        assert_eq!(kept_lines(&live.render(&m, "a\nb")), ["ssh://a"]);
    }

    #[test]
    fn no_semicolon_outside_the_kept_lines_as_nix_2_8_splits_on_it_first() {
        let m = machines("ssh://a\nssh://b");
        let mut live = LiveMachines::new(2, Hysteresis::default());
        live.observe(0, &up());
        live.observe(
            1,
            &HostReport::failed(Status::Error, Via::Ssh, "x; ssh://evil"),
        );
        let LiveFile::Text(text) = live.render(&m, "from a; b") else {
            panic!("no file")
        };
        assert!(!text.contains(';'), "{text}");
        // Read back as Nix 2.8 would: split on newlines and `;`, cut at `#`.
        let entries: Vec<&str> = text
            .split(['\n', ';'])
            .map(|e| e.split('#').next().unwrap().trim())
            .filter(|e| !e.is_empty())
            .collect();
        assert_eq!(entries, ["ssh://a"]);
    }
}
