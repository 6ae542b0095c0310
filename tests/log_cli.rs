//! `rbtop log` (the real binary) on logs others recorded: nix-output-monitor's
//! integration logs (tests/fixtures/others, sources named there) must give
//! the statuses nom's own tests expect, every derivation present. Plus the
//! input forms (file, `-`, stdin), the exit codes, and a daemon's warning.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

#[path = "support/sandbox.rs"]
mod sandbox;

use assert_cmd::Command;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/others/nom")
        .join(name)
}

fn rbtop(sb: &sandbox::Sandbox) -> Command {
    Command::from_std(sb.rbtop())
}

/// Runs `rbtop log --json` on `input` (a path, or stdin when `None`).
fn log_json(args: &[&str], stdin: Option<Vec<u8>>) -> (i32, Value) {
    let sb = sandbox::Sandbox::new("rbtop-log");
    let mut cmd = rbtop(&sb);
    cmd.arg("log").args(args).arg("--json");
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().expect("rbtop runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (out.status.code().unwrap_or(-1), json)
}

/// Each derivation's name → status.
fn statuses(json: &Value) -> BTreeMap<String, String> {
    json["derivations"]
        .as_array()
        .expect("derivations")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The derivations a log's plan names, read with serde_json alone.
fn planned_in(log: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_plan = false;
    for line in log.lines() {
        let Some(json) = line.strip_prefix("@nix ") else {
            continue;
        };
        let v: Value = serde_json::from_str(json).unwrap();
        let Some(msg) = v["msg"].as_str() else {
            continue;
        };
        if msg.ends_with("derivations will be built:") {
            in_plan = true;
        } else if in_plan && msg.starts_with("  /nix/store/") {
            let base = msg.trim().rsplit('/').next().unwrap();
            names.push(base[33..].trim_end_matches(".drv").to_string());
        } else {
            in_plan = false;
        }
    }
    names
}

#[test]
fn noms_standard_log_gives_four_succeeded() {
    let path = fixture("standard.stderr.json");
    let (code, json) = log_json(&[path.to_str().unwrap()], None);
    assert_eq!(code, 0, "{json}");
    let names = planned_in(&fs::read_to_string(&path).unwrap());
    assert_eq!(names.len(), 4);
    let expected: BTreeMap<String, String> = names
        .into_iter()
        .map(|n| (n, "succeeded".to_string()))
        .collect();
    assert_eq!(statuses(&json), expected);
    assert_eq!(
        json["counts"],
        json!({"planned": 0, "running": 0, "succeeded": 4, "failed": 0, "stopped": 0})
    );
    assert_eq!(json["errors"], json!([]));
    for drv in json["derivations"].as_array().unwrap() {
        assert_eq!(drv["host"], Value::Null, "a local build: {drv}");
    }
}

#[test]
fn noms_fail_log_gives_one_failed_one_planned_one_cut_short() {
    let path = fixture("fail.stderr.json");
    let log = fs::read(&path).unwrap();
    // From the file and from stdin, the same answer.
    for (args, stdin) in [
        (vec![path.to_str().unwrap()], None),
        (vec!["-"], Some(log.clone())),
        (vec![], Some(log.clone())),
    ] {
        let (code, json) = log_json(&args, stdin);
        assert_eq!(code, 1, "{json}");
        // nom: build-fail failed, build-waiting planned, build-long still
        // running when the log ends (rbtop: stopped), nothing completed.
        let expected: BTreeMap<String, String> = [
            ("build-fail", "failed"),
            ("build-long", "stopped"),
            ("build-waiting", "planned"),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
        assert_eq!(statuses(&json), expected);
        let failed = json["derivations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["status"] == "failed")
            .unwrap();
        assert_eq!(failed["exit_code"], 1);
        assert_eq!(json["counts"]["succeeded"], 0);
        // The summary `build of 'A', 'B', 'C' failed` is an error, but
        // marks none of the three failed.
        assert_eq!(json["errors"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn text_output_ends_with_the_real_reason_and_the_failed_derivation() {
    let sb = sandbox::Sandbox::new("rbtop-log");
    let out = rbtop(&sb)
        .arg("log")
        .arg(fixture("fail.stderr.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rbtop: build-waiting: planned\n"), "{text}");
    assert!(
        text.contains("rbtop: log ended, failed: 1 planned, 1 failed, 1 stopped\nrbtop: error: builder for '/nix/store/k4670x0hpqh34hak8jwhjgffkjj64jml-build-fail.drv' failed with exit code 1\nrbtop: build-fail failed on this machine, builder exit code 1"),
        "{text}"
    );
}

/// A client talking to a daemon logs the daemon's warning at level 0 (the
/// lines below are shaped as Nix 2.26 writes them; texts from nix-reference §7).
#[test]
fn a_daemons_warning_is_a_warning_not_the_failure_reason() {
    let drv = "/nix/store/0a9kbqzxl6w1g3x3xm6aib4zylxf3s2q-x.drv";
    let lines = [
        json!({"action":"msg","level":0,"msg":"\u{1b}[35;1mwarning:\u{1b}[0m ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user"}),
        json!({"action":"msg","level":0,"msg":"linking '/nix/store/x-a/share' to '/nix/store/.links/0abc'"}),
        json!({"action":"start","fields":[drv,"ssh://b1",1,1],"id":7,"level":3,"parent":0,"text":"building","type":105}),
        json!({"action":"msg","level":0,"msg":format!("\u{1b}[31;1merror:\u{1b}[0m build of '{drv}' on 'ssh://b1' failed: builder for '{drv}' failed with exit code 2")}),
    ];
    let log: String = lines.iter().map(|l| format!("@nix {l}\n")).collect();
    let (code, json) = log_json(&["-"], Some(log.clone().into_bytes()));
    assert_eq!(code, 1);
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["errors"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["derivations"][0]["host"], "ssh://b1");
    assert_eq!(json["derivations"][0]["exit_code"], 2);
    let sb = sandbox::Sandbox::new("rbtop-log");
    let out = rbtop(&sb).arg("log").write_stdin(log).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "rbtop: error: build of '{drv}' on 'ssh://b1' failed"
        )),
        "{text}"
    );
    assert!(!text.contains("rbtop: warning: ignoring"), "{text}");
}

#[test]
fn an_unreadable_input_is_a_usage_error() {
    let sb = sandbox::Sandbox::new("rbtop-log");
    let out = rbtop(&sb)
        .args(["log", "/nonexistent/build.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/build.log"), "{err}");
}

/// Nix 2.34 (Debian sid), recorded here (tests/fixtures/protocol/README.md):
/// its plan, `Cannot build 'X'. Reason: builder failed with exit code 3.`
/// for the failure and `Reason: 1 dependency failed.` for the dependent.
#[test]
fn nix_2_34s_new_failure_forms() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/internal-json/nix234-plan-failure.log");
    let (code, json) = log_json(&[path.to_str().unwrap()], None);
    assert_eq!(code, 1);
    let expected: BTreeMap<String, String> = [
        ("sid-ok", "succeeded"),
        ("sid-fail", "failed"),
        ("sid-after", "planned"),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect();
    assert_eq!(statuses(&json), expected);
    let fail = json["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "sid-fail")
        .unwrap();
    assert_eq!(fail["exit_code"], 3);
}
