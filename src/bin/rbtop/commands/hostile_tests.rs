//! Hostile text through every headless output path: the check and machines
//! tables, diagnostics with snippets, the explainer and a build's output.
//! Nothing may reach the terminal that it would obey, except a build log's
//! colour (SGR), as `nix build -L` keeps it.

use rbtop::diagnostics::{Diagnostic, Location, Origin};
use rbtop::explain::Requirement;
use rbtop::explain::testing::{explain_with, refused};
use rbtop::jobs::job::{Event, Graces, Job, JobId};
use rbtop::machines::{Machine, MachinesText, Parser};
use rbtop::probe::{HostReport, Status, Via};
use rbtop::remote_builds::Triage;
use rbtop::sanitize::HOSTILE;

/// A control character other than a line break, or an escape that is not SGR.
fn obeyed(text: &str, sgr_allowed: bool) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c.is_control() && c != '\n') {
        let tail = &rest[at..];
        if sgr_allowed && tail.starts_with("\x1b[") {
            let params = &tail[2..];
            let end = params
                .find(|c: char| !c.is_ascii_digit() && c != ';')
                .unwrap_or(params.len());
            if params[end..].starts_with('m') {
                rest = &params[end + 1..];
                continue;
            }
        }
        return Some(tail.chars().take(12).collect());
    }
    None
}

#[track_caller]
fn assert_inert(what: &str, text: &str) {
    if let Some(at) = obeyed(text, false) {
        panic!("{what}: {at:?} reaches the terminal in\n{text}");
    }
}

fn parse(text: &str) -> rbtop::machines::Parsed {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::file("/m")));
    parser.finish()
}

/// A machine whose URI, systems and features hold `evil` where the
/// grammar lets them (it splits on white space, so the line breaks go).
fn hostile_machines() -> Vec<Machine> {
    let text: String = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, evil)| {
            let word: String = evil.chars().filter(|c| !" \t\n\r;#".contains(*c)).collect();
            format!("ssh://h{i}{word} x86_64-linux,{word} - 1 1 f{word}\n")
        })
        .collect();
    let machines = parse(&text).machines;
    // Some are rejected (a bad URI), which is fine: enough stay to be shown.
    assert!(machines.len() >= 4, "{machines:?}");
    machines
}

#[test]
fn check_table_shows_hostile_answers_inertly() {
    let machines = hostile_machines();
    let reports: Vec<HostReport> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, evil)| {
            if i % 2 == 0 {
                HostReport {
                    status: Status::Up,
                    nix_version: Some(evil.to_string()),
                    protocol_version: Some(evil.to_string()),
                    ..HostReport::failed(Status::Up, Via::Ssh, "")
                }
            } else {
                HostReport::failed(Status::Refused, Via::Ssh, *evil)
            }
        })
        .collect();
    let triage = Triage::read(&machines, &reports);
    for color in [false, true] {
        let table = super::check::render_table(&machines, &reports, &triage, color);
        if color {
            if let Some(at) = obeyed(&table, true) {
                panic!("check table (colour): {at:?} in\n{table}");
            }
        } else {
            assert_inert("check table", &table);
        }
    }
}

#[test]
fn machines_table_and_diagnostics_show_hostile_files_inertly() {
    let mut text = String::new();
    for evil in HOSTILE {
        text.push_str(&format!("ssh://a{evil} - - many\n"));
        text.push_str(&format!("@/nonexistent/{evil}\n"));
    }
    let parsed = parse(&text);
    assert!(parsed.diagnostics.len() >= HOSTILE.len());
    for d in &parsed.diagnostics {
        assert_inert("diagnostic", &d.render());
    }
    let table = super::machines::render_table(&rbtop::sources::Resolved {
        parsed: rbtop::machines::Parsed {
            machines: hostile_machines(),
            diagnostics: Vec::new(),
        },
        consulted: HOSTILE.iter().map(|s| s.to_string()).collect(),
        local_system: "x86_64-linux".into(),
        nix_conf: Default::default(),
        default_machines_file: "/etc/nix/machines".into(),
    });
    assert_inert("machines table", &table);
}

#[test]
fn a_caret_stays_under_its_character_when_escapes_are_shown() {
    let d = Diagnostic::error(Location::new(Origin::BuildersFlag, 2).at_column(3), "bad")
        .with_snippet("\x1b\x1bab");
    assert_eq!(
        d.render(),
        "error: --builders:2:3: bad\n    | \\x1b\\x1bab\n    |         ^"
    );
}

#[test]
fn explain_shows_hostile_requirements_and_reasons_inertly() {
    for evil in HOSTILE {
        let explanation = explain_with(
            "ssh://b1 x86_64-linux",
            Requirement::new(evil, [*evil]),
            vec![refused(0)],
            None,
        );
        for color in [false, true] {
            let text = super::explain::render_text(&explanation, color);
            let found = obeyed(&text, color);
            assert!(found.is_none(), "explain: {found:?} in\n{text}");
        }
    }
}

#[test]
fn build_output_keeps_colour_and_drops_every_other_escape() {
    let now = std::time::Instant::now();
    let mut job = Job::new(
        JobId(1),
        crate::tui::fixture::numbered_request(&[]),
        vec!["nix".into()],
        1000,
        Graces::default(),
        now,
    );
    job.handle(Event::Spawned { pid: 1 }, now);
    for evil in HOSTILE {
        let json = serde_json::json!({"action": "msg", "level": 0, "msg": evil});
        job.handle(Event::Stderr(format!("@nix {json}")), now);
        job.handle(Event::Stderr(evil.to_string()), now);
    }
    job.handle(Event::Stderr("\x1b[31mred\x1b[0m".into()), now);
    for colour in [true, false] {
        let text = super::build::Printer::new(colour).update(&job);
        assert!(text.contains("red"), "{text}");
        assert_eq!(text.contains("\x1b[31m"), colour, "{text}");
        let found = obeyed(&text, colour);
        assert!(found.is_none(), "build output: {found:?} in\n{text}");
    }
}
