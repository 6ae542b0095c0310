//! What assets/ and nix/ give operators to deploy `rbtop serve`: the
//! Prometheus alert rules (promtool's own check and unit tests), the
//! Grafana dashboard and the rules naming only metrics rbtop exports, the
//! systemd unit's flags, and the NixOS module evaluated offline with a stub
//! lib (no nixpkgs here). Needs `promtool` (Debian's `prometheus`) and
//! `nix-instantiate`; fails, never skips, without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rbtop::export::metrics::{CANARY_NAMES, NAMES};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn asset(path: &str) -> PathBuf {
    root().join("assets").join(path)
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("NIX_REMOTE", "dummy://")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (promtool: Debian's `prometheus`; nix-instantiate: `nix-bin`): {e}"))
}

fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = asset("prometheus");
    let out = run("promtool", &["check", "rules", "rbtop-alerts.yml"], &dir);
    assert!(out.status.success(), "{}", text_of(&out));
    assert!(text_of(&out).contains("6 rules found"), "{}", text_of(&out));
    let out = run(
        "promtool",
        &["test", "rules", "rbtop-alerts.test.yml"],
        &dir,
    );
    assert!(out.status.success(), "{}", text_of(&out));
}

#[test]
fn the_alerts_asked_for_are_there() {
    let rules = std::fs::read_to_string(asset("prometheus/rbtop-alerts.yml")).unwrap();
    for alert in [
        "NixBuilderDown",
        "NixBuilderCapacityLow",
        "NixBuilderOrphanedBuilds",
        "NixBuilderStoreNearlyFull",
        "NixBuilderCanaryFailing",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}\n")),
            "{alert} missing"
        );
    }
}

/// Every `rbtop_…` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("rbtop_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn rules_and_dashboard_name_only_metrics_rbtop_exports() {
    let rules = std::fs::read_to_string(asset("prometheus/rbtop-alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(asset("grafana/rbtop-dashboard.json")).unwrap();
    let json: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut exprs = String::new();
    for panel in panels {
        let targets = panel["targets"]
            .as_array()
            .expect("every panel has targets");
        for target in targets {
            exprs.push_str(target["expr"].as_str().expect("a PromQL expr"));
            exprs.push('\n');
        }
    }
    let known: Vec<&str> = NAMES.iter().chain(CANARY_NAMES.iter()).copied().collect();
    for name in metric_names(&rules).into_iter().chain(metric_names(&exprs)) {
        assert!(
            known.contains(&name.as_str()),
            "{name} is not a metric rbtop exports"
        );
    }
    // The dashboard shows every builder metric at least once.
    for name in NAMES.iter().filter(|n| {
        n.starts_with("rbtop_builder_")
            && !n.ends_with("_timestamp_seconds")
            && !n.ends_with("_info")
            && !n.ends_with("_consecutive_failures")
            && !n.ends_with("_speed_factor")
    }) {
        assert!(exprs.contains(name), "the dashboard never shows {name}");
    }
}

#[test]
fn the_systemd_unit_uses_flags_rbtop_has() {
    let unit = std::fs::read_to_string(asset("systemd/rbtop.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let help = text_of(&run(
        env!("CARGO_BIN_EXE_rbtop"),
        &["serve", "--help"],
        root(),
    ));
    let global = text_of(&run(env!("CARGO_BIN_EXE_rbtop"), &["--help"], root()));
    for flag in exec.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(
            help.contains(flag) || global.contains(flag),
            "{flag} is not a flag of rbtop serve"
        );
    }
    assert!(
        unit.contains("User=root"),
        "runs as the nix-daemon's account"
    );
}

fn eval_module(settings: &str) -> Result<Value, String> {
    let out = run(
        "nix-instantiate",
        &[
            "--eval",
            "--strict",
            "--json",
            "tests/fixtures/nix/eval-module.nix",
            "--arg",
            "settings",
            settings,
        ],
        root(),
    );
    if !out.status.success() {
        return Err(text_of(&out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

#[test]
fn the_nixos_module_parses() {
    let out = run("nix-instantiate", &["--parse", "nix/module.nix"], root());
    assert!(out.status.success(), "{}", text_of(&out));
    let flake = text_of(&run("nix-instantiate", &["--parse", "flake.nix"], root()));
    assert!(
        flake.contains("nixosModules"),
        "flake.nix exposes no nixosModules"
    );
    assert!(
        flake.contains("nix/module.nix"),
        "nixosModules.rbtop imports nix/module.nix"
    );
}

#[test]
fn the_nixos_module_runs_serve_as_root_and_points_nix_at_the_live_file() {
    let config = eval_module("{ enable = true; liveMachines.enable = true; }").unwrap();
    let service = &config["systemd"]["services"]["rbtop"];
    let exec = service["serviceConfig"]["ExecStart"].as_str().unwrap();
    assert!(exec.starts_with("/nix/store/00000000000000000000000000000000-rbtop-0.1.0/bin/rbtop "));
    for words in [
        "'--machines' '/etc/nix/machines' 'serve'",
        "'--listen' '127.0.0.1:9945'",
        "'--write-machines' '/run/rbtop/machines'",
        "'--out-after' '2' '--back-after' '2'",
    ] {
        assert!(exec.contains(words), "{words} not in {exec}");
    }
    assert_eq!(service["serviceConfig"]["User"], "root");
    assert_eq!(service["environment"]["HOME"], "/root");
    assert_eq!(
        config["nix"]["settings"]["builders"],
        "@/run/rbtop/machines"
    );
    assert_eq!(config["assertions"][0]["assertion"], true);
}

#[test]
fn the_nixos_module_leaves_nix_alone_without_the_live_file_and_when_disabled() {
    let config = eval_module(
        "{ enable = true; listen = \"[::1]:9100\"; extraArgs = [ \"--concurrency\" \"8\" ]; }",
    )
    .unwrap();
    let exec = config["systemd"]["services"]["rbtop"]["serviceConfig"]["ExecStart"]
        .as_str()
        .unwrap();
    assert!(exec.contains("'--listen' '[::1]:9100'"), "{exec}");
    assert!(exec.ends_with("'--concurrency' '8'"), "{exec}");
    assert!(!exec.contains("--write-machines"), "{exec}");
    assert!(!exec.contains("--build-every"), "{exec}");
    let canaries = eval_module("{ enable = true; buildEvery = 900; }").unwrap();
    let exec = canaries["systemd"]["services"]["rbtop"]["serviceConfig"]["ExecStart"]
        .as_str()
        .unwrap();
    assert!(exec.contains("'--build-every' '900'"), "{exec}");
    assert!(
        config["nix"]["settings"].get("builders").is_none(),
        "{config}"
    );
    assert_eq!(eval_module("{ }").unwrap(), serde_json::json!({}));
}

#[test]
fn the_nixos_module_refuses_a_live_file_that_is_its_source() {
    let config = eval_module(
        "{ enable = true; liveMachines = { enable = true; path = \"/etc/nix/machines\"; }; }",
    )
    .unwrap();
    assert_eq!(config["assertions"][0]["assertion"], false);
}
