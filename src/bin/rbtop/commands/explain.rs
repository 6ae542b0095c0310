//! `rbtop explain (--system S [--features A,B] | DRV) [--json]`: which
//! machines Nix would send a build to, and why not the others.

use std::io::Write;

use std::process::ExitCode;

use comfy_table::{Cell, Color};
use serde::Serialize;

use rbtop::explain::ImpliedFeature;
use rbtop::explain::{
    Availability, Explanation, HookAnswer, MachineVerdict, Observed, Query, Reachability,
    Rejection, Requirement, Score, Subject, rules, text,
};
use rbtop::machines::Machine;
use rbtop::nix_version::NixVersion;
use rbtop::nixconf::LocalCapacity;
use rbtop::probe::HostReport;
use rbtop::sanitize::{for_terminal, for_terminal_lines};
use rbtop::slots::LocalLoad;

use crate::cli::ExplainArgs;
use crate::config::Settings;
use crate::setup::{self, ProbeStopped};

/// Exit status when an eligible machine is up with a free slot.
pub const READY: u8 = 0;
/// Exit status when no eligible machine is up with a free slot.
pub const NOT_READY: u8 = 1;

/// `rbtop explain`: every machine's verdict for the build asked about, the
/// eligible ones probed (unless `--no-probe`) and ranked as Nix ranks them.
pub fn run(settings: &Settings, args: &ExplainArgs) -> ExitCode {
    let (requirement, subject) = match query(args).and_then(|query| query.resolve()) {
        Ok(resolved) => resolved,
        Err(e) => return setup::usage_error(&e),
    };
    let (extra_args, resolved) = match setup::headless(settings) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let machines = &resolved.parsed.machines;
    setup::say_if_no_machines(&resolved);
    let probed = to_probe(machines, &requirement);
    let reports = if args.no_probe {
        None
    } else {
        let probe_settings = settings.probe_settings(&args.probe, extra_args);
        let eligible: Vec<_> = probed.iter().map(|&i| machines[i].clone()).collect();
        match setup::probe_headless(&eligible, probe_settings, !args.json) {
            Ok(reports) => Some(reports),
            Err(ProbeStopped::Interrupted(code)) => return code,
            Err(ProbeStopped::NoRuntime) => return ExitCode::from(NOT_READY),
        }
    };
    // Read after probing: the slots as close as can be to the answer.
    let load = rbtop::slots::read(&rbtop::slots::default_dir(), machines);
    let (observed, slots_problem) = observations(machines.len(), &probed, reports, &load);
    let local = LocalCapacity::of(&resolved.nix_conf);
    let explanation = rbtop::explain::explain(rbtop::explain::Inputs {
        requirement,
        subject,
        machines,
        observed,
        slots_problem,
        local: &local,
        nix_version: NixVersion::local(),
    });
    let stdout = if args.json {
        render_json(&explanation) + "\n"
    } else {
        render_text(&explanation, crate::commands::check::use_color())
    };
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    ExitCode::from(exit_status(&explanation))
}

/// The build asked about, from the flags (clap has already made sure that
/// exactly one of DRV and --system is given).
pub fn query(args: &ExplainArgs) -> Result<Query, String> {
    match (&args.drv, &args.system) {
        // A Nix expression: the .drv the local nix-instantiate makes of it.
        (Some(path), _) if rbtop::explain::instantiate::is_expression(path) => {
            rbtop::explain::instantiate::instantiate("nix-instantiate", path, args.attr.as_deref())
                .map(Query::Derivation)
        }
        (Some(_), _) if args.attr.is_some() => {
            Err("ATTR goes with a .nix file, not a .drv".to_string())
        }
        (Some(path), _) => Ok(Query::Derivation(path.clone())),
        (None, Some(system)) => {
            let system = system.trim();
            if system.is_empty() || system.contains(char::is_whitespace) {
                return Err(format!(
                    "--system '{system}' is not a system type such as x86_64-linux"
                ));
            }
            Ok(Query::System {
                system: system.to_string(),
                features: Requirement::parse_features(args.features.as_deref().unwrap_or("")),
            })
        }
        (None, None) => Err("give a .drv path or --system".to_string()),
    }
}

/// The machines worth probing: the eligible ones (a rejected machine's
/// reachability changes nothing).
pub fn to_probe(machines: &[Machine], requirement: &Requirement) -> Vec<usize> {
    (0..machines.len())
        .filter(|&i| rules::rejections(&machines[i], requirement).is_empty())
        .collect()
}

/// One observation per machine: the probe report of each probed one (in
/// `probed` order), busy slots from `load`; and why the slots are unknown,
/// if they are. `reports` is `None` with --no-probe.
pub fn observations(
    machines: usize,
    probed: &[usize],
    reports: Option<Vec<HostReport>>,
    load: &LocalLoad,
) -> (Vec<Observed>, Option<String>) {
    let not_probed = if reports.is_some() {
        "not probed: not eligible"
    } else {
        "not probed: --no-probe"
    };
    let mut reachability = vec![Reachability::unknown(not_probed); machines];
    for (&i, report) in probed.iter().zip(reports.into_iter().flatten()) {
        reachability[i] = Reachability::of(&report);
    }
    let (busy, problem) = rbtop::explain::busy_slots(load, machines);
    let observed = reachability
        .into_iter()
        .zip(busy)
        .map(|(reachability, busy)| Observed { reachability, busy })
        .collect();
    (observed, problem)
}

/// The exit status for this explanation.
pub fn exit_status(explanation: &Explanation) -> u8 {
    if explanation.has_ready_machine() {
        READY
    } else {
        NOT_READY
    }
}

/// The `--json` document. Field order and names are a stable interface.
#[derive(Debug, Serialize)]
struct ExplainJson<'a> {
    requirement: RequirementJson<'a>,
    ranking: RankingJson,
    slots: SlotsJson<'a>,
    machines: Vec<MachineJson<'a>>,
    local: &'a rbtop::explain::LocalBuild,
    outcome: OutcomeJson<'a>,
    summary: SummaryJson,
}

#[derive(Debug, Serialize)]
struct RequirementJson<'a> {
    system: &'a str,
    features: Vec<&'a str>,
    /// `null` for --system.
    derivation: Option<DerivationJson<'a>>,
}

#[derive(Debug, Serialize)]
struct DerivationJson<'a> {
    path: String,
    name: Option<&'a str>,
    prefer_local_build: bool,
    /// Features Nix adds to requiredSystemFeatures, each with why.
    implied_features: &'a [ImpliedFeature],
}

#[derive(Debug, Serialize)]
struct RankingJson {
    nix_version: Option<String>,
    division: rbtop::explain::Division,
    rule: String,
}

#[derive(Debug, Serialize)]
struct SlotsJson<'a> {
    readable: bool,
    problem: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct MachineJson<'a> {
    uri: &'a str,
    host: &'a str,
    eligible: bool,
    rejections: Vec<RejectionJson<'a>>,
    status: &'static str,
    reason: Option<&'a str>,
    busy: Option<u32>,
    max_jobs: u32,
    speed_factor: f64,
    availability: Availability,
    score: Option<Score>,
    rank: Option<usize>,
}

#[derive(Debug, Serialize)]
struct RejectionJson<'a> {
    #[serde(flatten)]
    rule: &'a Rejection,
    message: String,
}

#[derive(Debug, Serialize)]
struct OutcomeJson<'a> {
    action: &'static str,
    /// The chosen machine's URI, for `remote`.
    machine: Option<&'a str>,
    fails_first: Vec<&'a str>,
    message: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SummaryJson {
    total: usize,
    eligible: usize,
    ready: usize,
}

fn action_name(action: &HookAnswer) -> &'static str {
    match action {
        HookAnswer::LocalPreferred => "local_preferred",
        HookAnswer::Remote { .. } => "remote",
        HookAnswer::Postpone => "postpone",
        HookAnswer::DeclineBuildHere => "decline_build_here",
        HookAnswer::DeclineFail => "decline_fail",
    }
}

fn derivation_json(subject: &Subject) -> Option<DerivationJson<'_>> {
    match subject {
        Subject::Given => None,
        Subject::Derivation {
            path,
            name,
            prefer_local_build,
            implied,
        } => Some(DerivationJson {
            path: path.display().to_string(),
            name: name.as_deref(),
            prefer_local_build: *prefer_local_build,
            implied_features: implied,
        }),
    }
}

fn machine_json(m: &MachineVerdict) -> MachineJson<'_> {
    MachineJson {
        uri: &m.uri,
        host: &m.host,
        eligible: m.is_eligible(),
        rejections: m
            .rejections
            .iter()
            .map(|rule| RejectionJson {
                rule,
                message: rule.to_string(),
            })
            .collect(),
        status: m.reachability.name(),
        reason: match &m.reachability {
            Reachability::Up => None,
            Reachability::Down { reason, .. } => reason.as_deref(),
            Reachability::Unknown { why } => Some(why),
        },
        busy: m.busy,
        max_jobs: m.max_jobs,
        speed_factor: m.speed_factor,
        availability: m.availability,
        score: m.score,
        rank: m.rank,
    }
}

pub fn render_json(e: &Explanation) -> String {
    let uri = |i: usize| e.machines[i].uri.as_str();
    let document = ExplainJson {
        requirement: RequirementJson {
            system: &e.requirement.system,
            features: e.requirement.features.iter().map(String::as_str).collect(),
            derivation: derivation_json(&e.subject),
        },
        ranking: RankingJson {
            nix_version: e.nix_version.map(|v| v.to_string()),
            division: e.division,
            rule: e.division.describe(e.nix_version),
        },
        slots: SlotsJson {
            readable: e.slots_problem.is_none(),
            problem: e.slots_problem.as_deref(),
        },
        machines: e.machines.iter().map(machine_json).collect(),
        local: &e.local,
        outcome: OutcomeJson {
            action: action_name(&e.outcome.action),
            machine: match e.outcome.action {
                HookAnswer::Remote { machine } => Some(uri(machine)),
                _ => None,
            },
            fails_first: e.outcome.fails_first.iter().map(|&i| uri(i)).collect(),
            message: text::outcome(e),
        },
        summary: SummaryJson {
            total: e.machines.len(),
            eligible: e.eligible().count(),
            ready: e
                .machines
                .iter()
                .filter(|m| m.availability == Availability::Free)
                .count(),
        },
    };
    serde_json::to_string_pretty(&document).expect("plain data serialises")
}

/// The human report: the build, the ranking rule, a table of every machine,
/// why each unranked one is not, and what Nix would do.
pub fn render_text(e: &Explanation, color: bool) -> String {
    let mut out = for_terminal_lines(&prose_before_table(e)).into_owned();
    if e.machines.is_empty() {
        out.push_str("No machines are configured.\n");
    } else {
        out.push_str(&table(e, color));
    }
    out.push_str(&for_terminal_lines(&prose_after_table(e)));
    out
}

/// The text above the table (the derivation's own strings in it).
fn prose_before_table(e: &Explanation) -> String {
    let mut out = format!("Build: {}\n", text::requirement(e));
    for line in text::subject(e) {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(&text::ranking(e));
    out.push_str("\n\n");
    out
}

/// The reasons and the outcome below the table.
fn prose_after_table(e: &Explanation) -> String {
    let mut out = String::new();
    if !e.machines.is_empty() {
        let reasons: Vec<String> = e
            .machines
            .iter()
            .flat_map(|m| {
                text::why_not(m)
                    .into_iter()
                    .map(move |line| format!("  {}: {line}\n", m.host))
            })
            .collect();
        if !reasons.is_empty() {
            out.push_str("\nNot ranked:\n");
            out.extend(reasons);
        }
    }
    out.push('\n');
    for line in text::outcome(e) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn table(e: &Explanation, color: bool) -> String {
    let mut table = super::plain_table();
    table.set_header(text::COLUMNS);
    if color {
        table.enforce_styling();
    }
    for m in &e.machines {
        let colours = [
            None,
            Some(if m.is_eligible() {
                Color::Green
            } else {
                Color::Red
            }),
            Some(match m.reachability {
                Reachability::Up => Color::Green,
                Reachability::Down { .. } => Color::Red,
                Reachability::Unknown { .. } => Color::Grey,
            }),
            None,
            None,
            None,
            Some(match m.availability {
                Availability::Free => Color::Green,
                Availability::NotEligible => Color::Grey,
                _ => Color::Yellow,
            }),
        ];
        table.add_row(text::row(m).into_iter().zip(colours).map(|(cell, colour)| {
            match colour.filter(|_| color) {
                Some(colour) => Cell::new(for_terminal(&cell)).fg(colour),
                None => Cell::new(for_terminal(&cell)),
            }
        }));
    }
    super::plain_table_text(&table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbtop::explain::testing::{NIX_2_8, explain_with, machines, refused, slots, up};
    use rbtop::probe::{Status, Via};

    fn args(drv: Option<&str>, system: Option<&str>, features: Option<&str>) -> ExplainArgs {
        ExplainArgs {
            drv: drv.map(Into::into),
            attr: None,
            system: system.map(Into::into),
            features: features.map(Into::into),
            json: false,
            no_probe: false,
            probe: Default::default(),
        }
    }

    #[test]
    fn the_query_comes_from_a_drv_or_the_system_flags() {
        assert_eq!(
            query(&args(Some("/nix/store/x.drv"), None, None)).unwrap(),
            Query::Derivation("/nix/store/x.drv".into())
        );
        assert_eq!(
            query(&args(
                None,
                Some(" aarch64-linux "),
                Some("kvm,big-parallel")
            ))
            .unwrap(),
            Query::System {
                system: "aarch64-linux".into(),
                features: Requirement::parse_features("big-parallel kvm"),
            }
        );
        assert_eq!(
            query(&args(None, Some(""), None)).unwrap_err(),
            "--system '' is not a system type such as x86_64-linux"
        );
        assert!(query(&args(None, Some("x86_64-linux kvm"), None)).is_err());
    }

    #[test]
    fn only_eligible_machines_are_probed_and_reports_land_on_them() {
        let fleet = machines("ssh://a aarch64-linux\nssh://b x86_64-linux\nssh://c x86_64-linux");
        let requirement = Requirement::new("x86_64-linux", Vec::<String>::new());
        let probed = to_probe(&fleet, &requirement);
        assert_eq!(probed, [1, 2]);
        let reports = vec![
            HostReport::failed(Status::Timeout, Via::Ssh, "no answer"),
            HostReport::failed(Status::Dns, Via::Ssh, "no such host"),
        ];
        let load = LocalLoad::Readable {
            machines: vec![slots(0, 1), slots(1, 1), slots(0, 1)],
        };
        let (observed, problem) = observations(3, &probed, Some(reports), &load);
        assert_eq!(problem, None);
        let names: Vec<&str> = observed.iter().map(|o| o.reachability.name()).collect();
        assert_eq!(names, ["unknown", "timeout", "dns"]);
        assert_eq!(
            observed[0].reachability,
            Reachability::unknown("not probed: not eligible")
        );
        assert_eq!(observed[1].busy, Some(1));

        let (observed, _) = observations(3, &[], None, &load);
        assert!(
            observed
                .iter()
                .all(|o| o.reachability == Reachability::unknown("not probed: --no-probe"))
        );
    }

    fn mixed() -> Explanation {
        explain_with(
            "ssh://a x86_64-linux - 2 1\n\
             ssh://b aarch64-linux - 1 1 - benchmark\n\
             ssh://c x86_64-linux - 1 2\n\
             ssh://d x86_64-linux - 2 4 kvm",
            Requirement::new("x86_64-linux", ["kvm"]),
            vec![up(0), up(0), up(1), refused(0)],
            NIX_2_8,
        )
    }

    #[test]
    fn json_has_exactly_the_documented_shape() {
        let e = mixed();
        let text = render_json(&e);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            // In the order they are written.
            keys.sort_by_key(|k| text.find(&format!("\"{k}\":")).unwrap());
            keys
        };
        assert_eq!(
            keys(&json),
            [
                "requirement",
                "ranking",
                "slots",
                "machines",
                "local",
                "outcome",
                "summary"
            ]
        );
        assert_eq!(
            json["requirement"],
            serde_json::json!({"system": "x86_64-linux", "features": ["kvm"], "derivation": null})
        );
        assert_eq!(json["ranking"]["nix_version"], "2.8.0");
        assert_eq!(json["ranking"]["division"], "integer");
        assert_eq!(
            json["slots"],
            serde_json::json!({"readable": true, "problem": null})
        );
        let a = &json["machines"][0];
        assert_eq!(
            keys(a),
            [
                "uri",
                "host",
                "eligible",
                "rejections",
                "status",
                "reason",
                "busy",
                "max_jobs",
                "speed_factor",
                "availability",
                "score",
                "rank"
            ]
        );
        assert_eq!(a["eligible"], false);
        assert_eq!(
            a["rejections"],
            serde_json::json!([{
                "rule": "feature_missing",
                "feature": "kvm",
                "supported": [],
                "mandatory": [],
                "message": "required feature 'kvm' not supported (supported: -, mandatory: -)"
            }])
        );
        let rules: Vec<&str> = json["machines"][1]["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            [
                "system_not_listed",
                "feature_missing",
                "mandatory_not_required"
            ]
        );
        let d = &json["machines"][3];
        assert_eq!(d["eligible"], true);
        assert_eq!(d["status"], "refused");
        assert_eq!(d["availability"], "down");
        assert_eq!(d["score"], 0);
        assert_eq!(d["rank"], serde_json::Value::Null);
        assert_eq!(json["outcome"]["action"], "decline_fail");
        assert_eq!(json["outcome"]["machine"], serde_json::Value::Null);
        assert_eq!(
            json["outcome"]["fails_first"],
            serde_json::json!(["ssh://d"])
        );
        assert_eq!(json["local"]["possible"], false);
        assert_eq!(
            json["summary"],
            serde_json::json!({"total": 4, "eligible": 1, "ready": 0})
        );
        assert_eq!(exit_status(&e), NOT_READY);
    }

    #[test]
    fn json_names_the_chosen_machine() {
        let e = explain_with(
            "ssh://a x86_64-linux - 2 1\nssh://b x86_64-linux - 2 2",
            Requirement::new("x86_64-linux", Vec::<String>::new()),
            vec![up(0), up(1)],
            NIX_2_8,
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&e)).unwrap();
        assert_eq!(json["outcome"]["action"], "remote");
        assert_eq!(json["outcome"]["machine"], "ssh://b");
        assert_eq!(json["machines"][1]["rank"], 1);
        assert_eq!(json["machines"][0]["rank"], 2);
        assert_eq!(exit_status(&e), READY);
    }

    #[test]
    fn the_table_has_every_machine_then_why_not_then_what_nix_does() {
        let text = render_text(&mixed(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Build: x86_64-linux with features kvm");
        assert!(lines[1].starts_with("Ranking: Nix 2.8.0 here"), "{text}");
        assert!(lines[3].starts_with("HOST"), "{text}");
        let row = |host: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(&format!("{host} ")))
                .unwrap_or_else(|| panic!("no row for {host}:\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            row("a"),
            ["a", "rejected", "up", "0/2", "1", "-", "rejected"]
        );
        assert_eq!(
            row("d"),
            ["d", "eligible", "refused", "0/2", "4", "0", "down"]
        );
        assert!(
            text.contains("\nNot ranked:\n  a: required feature 'kvm' not supported"),
            "{text}"
        );
        assert!(
            text.contains("  b: system 'x86_64-linux' not in 'aarch64-linux'\n"),
            "{text}"
        );
        assert!(
            text.contains("  b: mandatory feature 'benchmark' not required"),
            "{text}"
        );
        assert!(text.contains("  d: down (refused: "), "{text}");
        assert!(text.contains("Nix would first try d (down)"), "{text}");
        assert!(!text.contains('\x1b'), "no colour unless asked");
        assert!(render_text(&mixed(), true).contains('\x1b'));
    }
}
