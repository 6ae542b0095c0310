//! The real `rbtop` binary on sample files: the JSON shape, the exit codes,
//! the human output, configuration layering and logging.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "support/sandbox.rs"]
mod sandbox;

use assert_cmd::Command;
use serde_json::Value;

/// A sandbox whose NIX_CONF_DIR is its own too, so the machine's real
/// /etc/nix and ~/.config never leak into a test.
struct Sandbox {
    inner: sandbox::Sandbox,
}

impl std::ops::Deref for Sandbox {
    type Target = sandbox::Sandbox;

    fn deref(&self) -> &sandbox::Sandbox {
        &self.inner
    }
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            inner: sandbox::Sandbox::new("rbtop-cli"),
        }
    }

    fn rbtop(&self) -> Command {
        let mut cmd = self.inner.rbtop();
        cmd.env("NIX_CONF_DIR", self.path("nixconf"))
            // ssh finds ~/.ssh through the password database, not $HOME: keep
            // the machine's own ssh config and known hosts out of the tests.
            .env(
                "NIX_SSHOPTS",
                format!(
                    "-F /dev/null -o UserKnownHostsFile={}",
                    self.path("known_hosts").display()
                ),
            );
        Command::from_std(cmd)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", run.stdout, run.stderr))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

const MACHINE_KEYS: [&str; 13] = [
    "host",
    "mandatory_features",
    "max_jobs",
    "port",
    "protocol",
    "public_host_key",
    "source",
    "speed_factor",
    "ssh_key",
    "supported_features",
    "systems",
    "uri",
    "user",
];

const PUB: &str = "c3NoLXJzYSBBQUFBQjNOemFDMXljMkVBQUFBREFRQUJBQUFCQVFDWWxOeHpLQT09";

fn sample(sb: &Sandbox) -> PathBuf {
    sb.write(
        "machines",
        &format!(
            "# the fleet\n\
             ssh://nix@host:2222 x86_64-linux - 1 1\n\
             ssh-ng://b2 x86_64-linux,aarch64-linux /root/.ssh/id_b2 4 2.5 kvm,big-parallel benchmark {PUB}\n\
             b3 x86_64-linux - not-a-number\n\
             b4\n"
        ),
    )
}

#[test]
fn json_has_exactly_the_documented_shape() {
    let sb = Sandbox::new();
    let path = sample(&sb);
    let r = run(sb
        .rbtop()
        .args(["machines", "--json", "--machines"])
        .arg(&path));
    assert_eq!(
        r.code, 1,
        "a rejected line means exit 1; stderr: {}",
        r.stderr
    );
    let doc = json(&r);
    assert_eq!(keys(&doc), ["errors", "machines", "warnings"]);

    let machines = doc["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 3, "the good lines are still printed");
    for m in machines {
        assert_eq!(keys(m), MACHINE_KEYS);
    }
    let file = path.display();
    assert_eq!(
        machines[0],
        serde_json::json!({
            "uri": "ssh://nix@host:2222", "protocol": "ssh", "user": "nix", "host": "host",
            "port": 2222, "systems": ["x86_64-linux"], "ssh_key": null, "max_jobs": 1,
            "speed_factor": 1.0, "supported_features": [], "mandatory_features": [],
            "public_host_key": null, "source": format!("{file}:2")
        })
    );
    assert_eq!(
        machines[1],
        serde_json::json!({
            "uri": "ssh-ng://b2", "protocol": "ssh-ng", "user": null, "host": "b2",
            "port": null, "systems": ["aarch64-linux", "x86_64-linux"],
            "ssh_key": "/root/.ssh/id_b2", "max_jobs": 4, "speed_factor": 2.5,
            "supported_features": ["big-parallel", "kvm"], "mandatory_features": ["benchmark"],
            "public_host_key": PUB, "source": format!("{file}:3")
        })
    );
    assert_eq!(machines[2]["uri"], "ssh://b4");
    assert_eq!(machines[2]["source"], format!("{file}:5"));
    // Speed factors are floats even when written as integers.
    assert!(machines[2]["speed_factor"].is_f64());

    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(keys(&errors[0]), ["message", "source"]);
    assert_eq!(errors[0]["source"], format!("{file}:4"));
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("max jobs (column #3) 'not-a-number'"),
        "{message}"
    );
    assert!(message.starts_with("col 19:"), "{message}");

    for w in doc["warnings"].as_array().unwrap() {
        assert_eq!(keys(w), ["message", "source"]);
    }
}

#[test]
fn clean_file_exits_zero_and_prints_an_aligned_table() {
    let sb = Sandbox::new();
    let path = sb.write(
        "machines",
        "ssh://b1 x86_64-linux - 2 1 big-parallel\nssh-ng://build-host-2 aarch64-linux - 8 4 - kvm\n",
    );
    let r = run(sb.rbtop().arg("machines").arg("--machines").arg(&path));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("URI"), "{}", r.stdout);
    assert!(lines[1].starts_with("ssh://b1 "));
    assert!(lines[2].starts_with("ssh-ng://build-host-2 "));
    // Aligned: every column starts at the same offset on every row.
    let col = lines[0].find("SYSTEMS").unwrap();
    assert_eq!(lines[1].find("x86_64-linux"), Some(col));
    assert_eq!(lines[2].find("aarch64-linux"), Some(col));
    assert!(lines[2].contains("kvm*"), "mandatory features are marked");
}

#[test]
fn human_errors_go_to_stderr_with_file_line_column() {
    let sb = Sandbox::new();
    let path = sample(&sb);
    let r = run(sb.rbtop().arg("machines").arg("--machines").arg(&path));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("ssh://b4"));
    let expected = format!("error: {}:4:19: max jobs (column #3)", path.display());
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("    | b3 x86_64-linux - not-a-number\n    |                   ^")
    );
    assert!(r.stderr.contains("3 machine(s) read, 1 error(s)"));
}

#[test]
fn builders_flag_is_its_own_source() {
    let sb = Sandbox::new();
    let r = run(sb.rbtop().args([
        "machines",
        "--json",
        "--builders",
        "ssh://a x86_64-linux ; ssh://b - - 0",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = json(&r);
    assert_eq!(doc["machines"][0]["source"], "--builders");
    assert_eq!(doc["machines"][1]["max_jobs"], 0);
    assert_eq!(doc["warnings"][0]["source"], "--builders");
}

#[test]
fn nix_conf_builders_are_used_by_default() {
    let sb = Sandbox::new();
    let conf = sb.write(
        "nixconf/nix.conf",
        "sandbox = false\nbuilders = ssh://from-conf x86_64-linux - 3 ; ssh://bad - - x\n",
    );
    let r = run(sb.rbtop().args(["machines", "--json"]));
    assert_eq!(r.code, 1);
    let doc = json(&r);
    assert_eq!(doc["machines"][0]["uri"], "ssh://from-conf");
    assert_eq!(
        doc["machines"][0]["source"],
        format!("{}:2", conf.display())
    );
    assert_eq!(doc["errors"][0]["source"], format!("{}:2", conf.display()));
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("col 61:")
    );
}

#[test]
fn default_machines_file_lives_in_nix_conf_dir() {
    let sb = Sandbox::new();
    let machines = sb.write("nixconf/machines", "ssh://default-b1\n");
    let r = run(sb.rbtop().args(["machines", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = json(&r);
    assert_eq!(doc["machines"][0]["uri"], "ssh://default-b1");
    assert_eq!(
        doc["machines"][0]["source"],
        format!("{}:1", machines.display())
    );
}

#[test]
fn empty_state_says_where_rbtop_looked() {
    let sb = Sandbox::new();
    let r = run(sb.rbtop().arg("machines"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("No builders configured."),
        "{}",
        r.stdout
    );
    let nixconf = sb.path("nixconf");
    assert!(
        r.stdout
            .contains(&format!("{}/nix.conf: not found", nixconf.display()))
    );
    assert!(r.stdout.contains(&format!(
        "{}/nix/nix.conf: not found",
        sb.path("config").display()
    )));
    assert!(r.stdout.contains("NIX_CONFIG: not set"));
    assert!(r.stdout.contains(&format!(
        "builders not set: Nix's default @{}/machines (not found)",
        nixconf.display()
    )));
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    let cases: [&[&str]; 4] = [
        &["machines", "--builders", "a", "--machines", "/m"],
        &["machines", "--no-such-flag"],
        &["no-such-command"],
        &["machines", "--log-level", "rbtop=notalevel"],
    ];
    for args in cases {
        let r = run(sb.rbtop().args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
    // No sub-command is the dashboard: without a terminal it says to use
    // `rbtop check`, with or without flags.
    for args in [&[][..], &["--log-level", "info", "--refresh", "2"][..]] {
        let r = run(sb.rbtop().args(args));
        assert_eq!(r.code, 2, "{args:?}");
        assert!(
            r.stderr.contains("the dashboard needs a terminal"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("rbtop check"), "{args:?}: {}", r.stderr);
    }
    // Dashboard flags belong to the dashboard: before a command they are
    // refused, not silently dropped.
    for flag in [
        ["--refresh", "2"],
        ["--timeout", "3"],
        ["--concurrency", "4"],
    ] {
        let r = run(sb.rbtop().args(flag).args(["check", "--builders", "local"]));
        assert_eq!(r.code, 2, "{flag:?}: {}", r.stderr);
        assert!(r.stderr.contains("is a dashboard option"), "{}", r.stderr);
    }
    for too_fast in ["0", "0.001"] {
        let r = run(sb.rbtop().args(["--refresh", too_fast]));
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("--refresh"), "{}", r.stderr);
    }
    // A machines file named on the command line must exist.
    let r = run(sb
        .rbtop()
        .args(["machines", "--machines", "/no/such/machines"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/no/such/machines does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_key_bindings_in_the_config_are_usage_errors_naming_the_action() {
    let sb = Sandbox::new();
    let config = sb.path("config.toml");
    std::fs::write(&config, "[keys]\nfly = \"f\"\n").unwrap();
    // The dashboard checks the keys before it needs a terminal.
    let r = run(sb.rbtop().arg("--config").arg(&config));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("'fly' is not an action"), "{}", r.stderr);
    std::fs::write(&config, "[keys]\ndown = \"k\"\n").unwrap();
    let r = run(sb.rbtop().arg("--config").arg(&config));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("'k' is bound to both up and down"),
        "{}",
        r.stderr
    );
    std::fs::write(&config, "[dashboard]\nrefresh_interval = 0\n").unwrap();
    let r = run(sb.rbtop().arg("--config").arg(&config));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("refresh_interval"), "{}", r.stderr);
}

#[test]
fn source_options_work_before_the_command_as_after_it() {
    let sb = Sandbox::new();
    let before =
        run(sb
            .rbtop()
            .args(["--builders", "ssh://b1 x86_64-linux", "machines", "--json"]));
    let after = run(sb
        .rbtop()
        .args(["machines", "--json", "--builders", "ssh://b1 x86_64-linux"]));
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(before.stdout, after.stdout);
    assert_eq!(json(&before)["machines"][0]["host"], "b1");
}

#[test]
fn builders_may_start_with_a_dash() {
    let sb = Sandbox::new();
    let r = run(sb
        .rbtop()
        .args(["machines", "--json", "--builders", "- x86_64-linux"]));
    assert_eq!(
        r.code, 1,
        "parsed, then rejected for its '-' URI: {}",
        r.stderr
    );
    assert!(
        json(&r)["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no store URI")
    );
}

#[test]
fn unknown_config_key_is_named() {
    let sb = Sandbox::new();
    let config = sb.write("rbtop.toml", "[machines]\nbuilderz = \"ssh://a\"\n");
    let r = run(sb.rbtop().args(["machines", "--config"]).arg(&config));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("builderz"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&config.display().to_string()),
        "{}",
        r.stderr
    );
}

#[test]
fn config_file_is_layered_under_flags() {
    let sb = Sandbox::new();
    // The default location is read without --config.
    sb.write(
        "config/rbtop/config.toml",
        "[machines]\nbuilders = \"ssh://from-config\"\n",
    );
    let doc = json(&run(sb.rbtop().args(["machines", "--json"])));
    assert_eq!(doc["machines"][0]["uri"], "ssh://from-config");
    assert!(
        doc["machines"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("config.toml (builders):1")
    );
    // A flag beats the file.
    let doc = json(&run(sb.rbtop().args([
        "machines",
        "--json",
        "--builders",
        "ssh://from-flag",
    ])));
    assert_eq!(doc["machines"][0]["uri"], "ssh://from-flag");
}

#[test]
fn missing_explicit_config_is_a_usage_error() {
    let sb = Sandbox::new();
    let r = run(sb
        .rbtop()
        .args(["machines", "--config", "/no/such/rbtop.toml"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/no/such/rbtop.toml"));
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn logs_go_to_a_daily_file_in_the_state_dir_never_to_the_terminal() {
    let sb = Sandbox::new();
    let r = run(sb
        .rbtop()
        .env("RBTOP_LOG", "debug")
        .args(["machines", "--builders", "ssh://a"]));
    assert_eq!(r.code, 0);
    assert!(!r.stdout.contains("rbtop starting") && !r.stderr.contains("rbtop starting"));
    let files = log_files(&sb.path("state/rbtop"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("rbtop.") && name.ends_with(".log"),
        "{name}"
    );
    let log = fs::read_to_string(&files[0]).unwrap();
    assert!(log.contains("rbtop starting"), "{log}");
    assert!(log.contains("machines resolved"), "{log}");
}

#[test]
fn log_level_flag_beats_the_environment() {
    let sb = Sandbox::new();
    let r = run(sb.rbtop().env("RBTOP_LOG", "debug").args([
        "machines",
        "--log-level",
        "error",
        "--builders",
        "ssh://a",
    ]));
    assert_eq!(r.code, 0);
    let files = log_files(&sb.path("state/rbtop"));
    let log = files
        .first()
        .map(|f| fs::read_to_string(f).unwrap())
        .unwrap_or_default();
    assert!(
        !log.contains("rbtop starting"),
        "info lines filtered out: {log}"
    );
}

#[test]
fn the_sample_in_assets_reads_cleanly() {
    let sb = Sandbox::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/machines.example");
    let r = run(sb.rbtop().arg("machines").arg("--machines").arg(&sample));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().count() >= 4, "{}", r.stdout);
}

// ---- rbtop check: what needs no fleet (the fleet tests are in tests/fleet_check.rs)

#[test]
fn check_rejects_bad_flags_and_bad_nix_sshopts_as_usage_errors() {
    let sb = Sandbox::new();
    for flags in [
        ["--timeout", "0"],
        ["--timeout", "soon"],
        ["--concurrency", "0"],
    ] {
        let r = run(sb
            .rbtop()
            .args(["check", "--builders", "ssh://b1"])
            .args(flags));
        assert_eq!(r.code, 2, "{flags:?}: {}", r.stderr);
    }
    let r = run(sb
        .rbtop()
        .env("NIX_SSHOPTS", "-o 'ProxyJump=unclosed")
        .args(["check", "--builders", "ssh://b1"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("NIX_SSHOPTS"), "{}", r.stderr);
    sb.write(
        "config/rbtop/config.toml",
        "[probe]\nhost_key_checking = \"off\"\n",
    );
    let r = run(sb.rbtop().args(["check", "--builders", "ssh://b1"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("host_key_checking"), "{}", r.stderr);
}

#[test]
fn check_with_no_builders_says_where_it_looked_and_fails() {
    let sb = Sandbox::new();
    let r = run(sb.rbtop().args(["check", "--json"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        json(&r),
        serde_json::json!({"hosts": [], "summary": {"total": 0, "up": 0}, "slots_error": null})
    );
    assert!(r.stderr.contains("No builders configured"), "{}", r.stderr);
}

#[test]
fn check_names_refused_dns_and_unsupported_stores_without_a_fleet() {
    let sb = Sandbox::new();
    // Port 1 on loopback: nothing listens. `.invalid` never resolves (RFC 6761).
    let r = run(sb.rbtop().args([
        "check",
        "--json",
        "--timeout",
        "5",
        "--builders",
        "ssh://root@127.0.0.1:1; ssh://nosuch.invalid; https://cache.example.org; unix:///nonexistent/socket",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = json(&r);
    let status: Vec<&str> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["refused", "dns", "error", "refused"], "{v:#}");
    let reason = |i: usize| v["hosts"][i]["reason"].as_str().unwrap().to_string();
    assert!(reason(0).contains("Connection refused"), "{}", reason(0));
    assert!(reason(1).contains("nosuch.invalid"), "{}", reason(1));
    assert!(reason(2).contains("https"), "{}", reason(2));
    assert!(reason(3).contains("/nonexistent/socket"), "{}", reason(3));
    assert_eq!(v["summary"], serde_json::json!({"total": 4, "up": 0}));
}

#[test]
fn check_probes_local_stores_locally_with_real_nix() {
    // `ssh://localhost` runs nix-store without ssh, as Nix does; a chroot
    // store keeps the test off the machine's own /nix.
    let sb = Sandbox::new();
    let store = sb.path("store");
    // Created once here: the three probes below start at the same moment,
    // and three Nix processes creating one new store race on its database.
    let init = std::process::Command::new("nix-store")
        .arg("--store")
        .arg(format!("local?root={}", store.display()))
        .arg("--init")
        .status()
        .unwrap();
    assert!(init.success(), "nix-store --init: {init}");
    let builders = format!(
        "ssh://localhost?remote-store={0}; ssh-ng://localhost?remote-store={0}; local?root={0}",
        store.display()
    );
    let r = run(sb
        .rbtop()
        .args(["check", "--json", "--builders", &builders]));
    let v = json(&r);
    assert_eq!(r.code, 0, "{v:#}\n{}", r.stderr);
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["protocol_version"], "2.7");
    assert_eq!(
        hosts[1]["protocol_version"], "1.34",
        "Nix 2.8's daemon: {v:#}"
    );
    let local_nix = std::process::Command::new("nix-store")
        .arg("--version")
        .output()
        .unwrap();
    let local_nix = String::from_utf8(local_nix.stdout).unwrap();
    for host in hosts {
        assert_eq!(host["status"], "up", "{host:#}");
        assert!(
            local_nix.contains(host["nix_version"].as_str().unwrap()),
            "{host:#}"
        );
        assert!(host["facts"]["cpus"].as_u64().unwrap() >= 1, "{host:#}");
        assert_eq!(host["connect_ms"], Value::Null, "no connection: {host:#}");
        assert!(host["handshake_ms"].as_f64().unwrap() > 0.0);
    }
    // Protocol 1.34 predates the trust field (1.35): unknown, never guessed.
    assert_eq!(hosts[1]["trusted"], Value::Null, "{v:#}");
}

#[test]
fn check_drops_nix_sshopts_flags_that_would_hide_or_steal_the_master() {
    let sb = Sandbox::new();
    let r = run(sb
        .rbtop()
        .env(
            "NIX_SSHOPTS",
            "-F /dev/null -q -S /tmp/elsewhere -E /tmp/elsewhere.log",
        )
        .args(["check", "--json", "--builders", "ssh://root@127.0.0.1:1"]));
    // Without -q and -E, ssh's own error still names the failure.
    let v = json(&r);
    assert_eq!(v["hosts"][0]["status"], "refused", "{v:#}\n{}", r.stderr);
    for flag in ["'-q'", "'-S /tmp/elsewhere'", "'-E /tmp/elsewhere.log'"] {
        assert!(
            r.stderr.contains(flag),
            "no warning for {flag}: {}",
            r.stderr
        );
    }
}

#[test]
fn check_refuses_a_nix_sshopts_that_is_not_utf8() {
    use std::os::unix::ffi::OsStringExt;
    let sb = Sandbox::new();
    let r = run(sb
        .rbtop()
        .env(
            "NIX_SSHOPTS",
            std::ffi::OsString::from_vec(b"-o \xff".to_vec()),
        )
        .args(["check", "--builders", "ssh://b1"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("NIX_SSHOPTS"), "{}", r.stderr);
}

#[test]
fn check_never_connects_without_an_unusable_pin() {
    let sb = Sandbox::new();
    // Two key lines in the pin: could smuggle a CA into the pin file.
    let pin = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUpZZnFFU2FpUWxPckwzV20xUTlzOXE4YjRtamoybkl1eXFDWnViNWFHUGkKQGNlcnQtYXV0aG9yaXR5ICogc3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUpZZnFFU2FpUWxPckwzV20xUTlzOXE4YjRtamoybkl1eXFDWnViNWFHUGkK";
    let line = format!("ssh://root@127.0.0.1:1 x86_64-linux - 1 1 - - {pin}");
    let r = run(sb.rbtop().args(["check", "--json", "--builders", &line]));
    let v = json(&r);
    let host = &v["hosts"][0];
    // Port 1 would say `refused` had rbtop connected at all.
    assert_eq!(host["status"], "hostkey", "{v:#}");
    assert!(
        host["reason"]
            .as_str()
            .unwrap()
            .contains("more than one line"),
        "{v:#}"
    );
}

#[test]
fn build_refuses_unknown_or_ambiguous_hosts_and_lists_the_machines() {
    let sb = Sandbox::new();
    let builders = "ssh://b1 x86_64-linux; ssh://root@b1 x86_64-linux; ssh://b2 x86_64-linux";
    let unknown =
        run(sb
            .rbtop()
            .args(["--builders", builders, "build", "--on", "b9", "--", "x.nix"]));
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("--on b9: no such machine")
            && unknown.stderr.contains("ssh://b1, ssh://root@b1, ssh://b2"),
        "{}",
        unknown.stderr
    );
    let ambiguous =
        run(sb
            .rbtop()
            .args(["--builders", builders, "build", "--on", "b1", "--", "x.nix"]));
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
    assert!(
        ambiguous
            .stderr
            .contains("--on b1: 2 machines match (ssh://b1, ssh://root@b1)"),
        "{}",
        ambiguous.stderr
    );
    // The exact URI, or user@host, picks one; with no nix on PATH the build
    // then fails to start (127), which proves the name was accepted.
    for name in ["ssh://root@b1", "root@b1", "b2"] {
        let picked = run(sb.rbtop().env("PATH", sb.path("empty-path")).args([
            "--builders",
            builders,
            "build",
            "--on",
            name,
            "--",
            "x.nix",
        ]));
        assert_eq!(picked.code, 127, "--on {name}: {}", picked.stderr);
    }
}

#[test]
fn build_rejects_bad_commands_and_impossible_targets_before_running_anything() {
    let sb = Sandbox::new();
    let bad = run(sb.rbtop().args([
        "--builders",
        "",
        "build",
        "--command",
        "make",
        "--",
        "x.nix",
    ]));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("unknown build command 'make'"),
        "{}",
        bad.stderr
    );
    let realise = run(sb.rbtop().args([
        "--builders",
        "",
        "build",
        "--command",
        "nix-store --realise",
        "--",
        "x.nix",
    ]));
    assert_eq!(realise.code, 2, "{}", realise.stderr);
    assert!(
        realise.stderr.contains(".drv paths only"),
        "{}",
        realise.stderr
    );
    let nothing = run(sb.rbtop().args(["--builders", "", "build"]));
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    let config = sb.write("config/rbtop/config.toml", "[jobs]\ncommand = \"ninja\"\n");
    let bad_config =
        run(sb
            .rbtop()
            .args(["--config", config.to_str().unwrap(), "build", "--", "x.nix"]));
    assert_eq!(bad_config.code, 2, "{}", bad_config.stderr);
    assert!(
        bad_config.stderr.contains("[jobs] command"),
        "{}",
        bad_config.stderr
    );
}

#[test]
fn build_whose_command_cannot_start_exits_127_and_keeps_a_log_file() {
    let sb = Sandbox::new();
    let out = run(sb.rbtop().env("PATH", sb.path("empty-path")).args([
        "--builders",
        "",
        "build",
        "--",
        "x.nix",
    ]));
    assert_eq!(out.code, 127, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("cannot start nix"), "{}", out.stdout);
    let jobs = sb.path("state/rbtop/jobs");
    let files: Vec<_> = fs::read_dir(&jobs).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one log file in {}", jobs.display());
    let text = fs::read_to_string(files[0].path()).unwrap();
    assert!(
        text.contains("# nix build --extra-experimental-features nix-command --json --no-link --log-format internal-json -v -f x.nix --builders ''"),
        "{text}"
    );
    assert!(text.contains("cannot start nix"), "{text}");
}
