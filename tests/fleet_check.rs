//! `rbtop check` against a real fleet: real sshd, real Nix 2.8 and 2.26, and
//! one host of each fault (tests/fleet/fleet.sh). One fleet serves every test
//! here, so this binary has its own main (libtest-mimic) that starts it
//! first and always stops it. Needs root; fails, never skips, without it.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fleet::Fleet;
use fleet_trials::{ensure, processes_matching, settle};
use libtest_mimic::Failed;
use sandbox::Sandbox;
use serde_json::Value;

/// An isolated environment for one rbtop run (a [`Sandbox`] with its own
/// NIX_CONF_DIR), so leftovers can be counted.
struct Env {
    sandbox: Sandbox,
}

impl std::ops::Deref for Env {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Env {
    fn new() -> Env {
        Env {
            sandbox: Sandbox::new("rbtop-fc"),
        }
    }

    fn rbtop(&self, nix_sshopts: Option<&str>) -> Command {
        let mut cmd = self.sandbox.rbtop();
        cmd.env("NIX_CONF_DIR", self.path("nixconf"));
        // ssh finds ~/.ssh through the password database, not $HOME: without
        // the fleet's config, point it at this sandbox's files explicitly.
        let isolated = format!(
            "-F /dev/null -o UserKnownHostsFile={}",
            self.path("home/.ssh/known_hosts").display()
        );
        cmd.env("NIX_SSHOPTS", nix_sshopts.unwrap_or(&isolated));
        cmd
    }

    /// `rbtop check --json <flags> --machines <machines>` in this environment.
    fn check(&self, nix_sshopts: Option<&str>, flags: &[&str], machines: &Path) -> Checked {
        check(
            self.rbtop(nix_sshopts)
                .args(["check", "--json"])
                .args(flags)
                .arg("--machines")
                .arg(machines),
        )
    }

    /// Control directories rbtop left in its runtime dir.
    fn leftover_control_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.path("run"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

struct Checked {
    code: i32,
    json: Value,
    stderr: String,
    elapsed: Duration,
}

fn check(cmd: &mut Command) -> Checked {
    let started = Instant::now();
    let out: Output = cmd.output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    Checked {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
        elapsed,
    }
}

fn host<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {json:#}"))
}

fn machines_line(uri: &str, key: Option<&Path>, pin: Option<&str>) -> String {
    format!(
        "{uri} x86_64-linux {} 2 1 - - {}\n",
        key.map_or("-".to_string(), |k| k.display().to_string()),
        pin.unwrap_or("-")
    )
}

// ---- the tests

fn every_fault_gets_its_own_status(fleet: &Fleet) -> Result<(), Failed> {
    let env = Env::new();
    let r = env.check(
        Some(&fleet.nix_sshopts()),
        &["--timeout", "4"],
        &fleet.machines_file(),
    );
    ensure(r.code == 1, || {
        format!("exit {} (a host is down): {}", r.code, r.stderr)
    })?;
    let expect = [
        ("b1", "up"),
        ("b2", "up"),
        ("b3", "up"),
        ("t1", "up"),
        ("refused", "refused"),
        ("hung", "timeout"),
        ("authfail", "auth"),
        ("nonix", "nonix"),
        ("wrongkey", "hostkey"),
    ];
    let got: Vec<(String, String)> = r.json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().into(),
                h["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expect
        .iter()
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect();
    ensure(got == want, || {
        format!("statuses in file order:\n{got:?}\n{:#}", r.json)
    })?;
    for (name, reason_part) in [
        ("refused", "Connection refused"),
        ("hung", "timed out"),
        ("authfail", "Permission denied (publickey)"),
        ("nonix", "sh: 1: nix-store: not found"),
        ("wrongkey", "pinned"),
    ] {
        let h = host(&r.json, name);
        let reason = h["reason"].as_str().unwrap_or_default();
        ensure(reason.contains(reason_part), || {
            format!("{name}: reason {reason:?} lacks {reason_part:?}")
        })?;
        ensure(h["facts"].is_null(), || {
            format!("{name}: facts of a host not reached: {h:#}")
        })?;
    }
    for name in ["b1", "b2", "b3"] {
        let h = host(&r.json, name);
        ensure(
            h["protocol_version"] == "2.7" && h["nix_version"] == "2.8.0",
            || format!("{h:#}"),
        )?;
        ensure(h["reason"].is_null() && h["trusted"].is_null(), || {
            format!("{h:#}")
        })?;
        ensure(h["connect_ms"].as_f64().unwrap() > 0.0, || format!("{h:#}"))?;
        ensure(h["handshake_ms"].as_f64().unwrap() > 0.0, || {
            format!("{h:#}")
        })?;
        let facts = &h["facts"];
        ensure(facts["arch"] == std::env::consts::ARCH, || {
            format!("{facts:#}")
        })?;
        ensure(facts["cpus"].as_u64().unwrap() >= 1, || {
            format!("{facts:#}")
        })?;
        ensure(facts["load"].as_array().unwrap().len() == 3, || {
            format!("{facts:#}")
        })?;
        let (total, available) = (
            facts["mem_total"].as_u64().unwrap(),
            facts["mem_available"].as_u64().unwrap(),
        );
        ensure(available > 0 && available <= total, || format!("{facts:#}"))?;
        ensure(facts["store_free"].as_u64().unwrap() > 0, || {
            format!("{facts:#}")
        })?;
        ensure(
            facts["kernel"].as_str().unwrap().starts_with("Linux"),
            || format!("{facts:#}"),
        )?;
    }
    let t1 = host(&r.json, "t1");
    let version = t1["nix_version"].as_str().unwrap_or_default();
    ensure(version.starts_with("2.26."), || {
        format!("t1 runs Nix 2.26: {t1:#}")
    })?;
    ensure(t1["protocol_version"] == "2.7", || format!("{t1:#}"))?;
    ensure(
        r.json["summary"] == serde_json::json!({"total": 9, "up": 4}),
        || format!("{:#}", r.json["summary"]),
    )?;
    let left = env.leftover_control_dirs();
    ensure(left.is_empty(), || {
        format!("control directories left behind: {left:?}")
    })
}

fn ssh_ng_reports_nix_version_and_trust(fleet: &Fleet) -> Result<(), Failed> {
    let env = Env::new();
    let machines = env.write(
        "machines",
        &(machines_line("ssh-ng://b1", None, None) + &machines_line("ssh-ng://t1", None, None)),
    );
    let r = env.check(Some(&fleet.nix_sshopts()), &[], &machines);
    ensure(r.code == 0, || {
        format!("exit {}: {:#}\n{}", r.code, r.json, r.stderr)
    })?;
    let b1 = host(&r.json, "b1");
    ensure(
        b1["protocol_version"] == "1.34" && b1["nix_version"] == "2.8.0",
        || format!("{b1:#}"),
    )?;
    ensure(b1["trusted"].is_null(), || {
        format!("1.34 has no trust field: {b1:#}")
    })?;
    let t1 = host(&r.json, "t1");
    // rbtop offers 1.37; Nix 2.26 speaks 1.38, so 1.37 is what both agree on.
    ensure(t1["protocol_version"] == "1.37", || format!("{t1:#}"))?;
    ensure(
        t1["nix_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2.26."),
        || format!("{t1:#}"),
    )?;
    ensure(t1["trusted"] == true, || {
        format!("root's nix-daemon --stdio is trusted: {t1:#}")
    })
}

/// TRUSTED over ssh://, from `nix-daemon --stdio` run by the facts script in
/// the cold probe's one session: Nix 2.26's daemon (trusted-users = root) says no to
/// rbtop-untrusted and yes to root; without a daemon (uts2) or before
/// protocol 1.35 (b1, Nix 2.8) nothing says, so it is null, never false.
fn ssh_reports_the_daemons_trust(fleet: &Fleet) -> Result<(), Failed> {
    let env = Env::new();
    let lines = std::fs::read_to_string(fleet.untrusted_ssh_machines()).unwrap()
        + &machines_line("ssh://b1", None, None)
        + &machines_line("ssh://t1", None, None);
    let machines = env.write("machines", &lines);
    let r = env.check(Some(&fleet.nix_sshopts()), &["--timeout", "20"], &machines);
    let by_uri = |uri: &str| {
        r.json["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["uri"] == uri)
            .cloned()
            .unwrap_or_else(|| panic!("no {uri} in {:#}", r.json))
    };
    for (uri, status, trusted) in [
        ("ssh://rbtop-untrusted@uts1", "up", Value::Bool(false)),
        ("ssh://uts1", "up", Value::Bool(true)),
        ("ssh://t1", "up", Value::Bool(true)),
        ("ssh://b1", "up", Value::Null),
        // No daemon for a non-root user: Nix's own nix-store cannot open
        // the store either, and nothing says whether the user is trusted.
        ("ssh://rbtop-untrusted@uts2", "error", Value::Null),
    ] {
        let h = by_uri(uri);
        ensure(h["status"] == status && h["trusted"] == trusted, || {
            format!("{uri}: want {status}, trusted {trusted}: {h:#}")
        })?;
    }
    // The same in the table, with the flag under it for uts1's user only.
    let out = env
        .rbtop(Some(&fleet.nix_sshopts()))
        .args(["check", "--timeout", "20", "--machines"])
        .arg(&machines)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let flagged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("builds will fail: not privileged"))
        .collect();
    ensure(
        flagged.len() == 1 && flagged[0].contains("does not trust rbtop-untrusted@uts1"),
        || format!("{text}"),
    )?;
    nothing_left(&env, "after the trust checks")
}

/// Pins through an ssh_config alias, the real address with a non-22 port in
/// the URI, and the machines line's own key column instead of NIX_SSHOPTS.
fn pinned_keys_are_enforced_through_aliases_and_ports(fleet: &Fleet) -> Result<(), Failed> {
    let b1 = fleet.host("b1");
    let real = b1.hostkey_b64.clone().unwrap();
    let other = fleet.host("t1").hostkey_b64.clone().unwrap();
    let direct = format!("ssh://root@{}:{}", b1.addr, b1.port);
    let key = fleet.client_key();
    for (pin, expected) in [(&real, "up"), (&other, "hostkey")] {
        let env = Env::new();
        let text = machines_line("ssh://b1", None, Some(pin))
            + &machines_line("ssh://b1-alias", None, Some(pin))
            + &machines_line(&direct, Some(&key), Some(pin));
        let machines = env.write("machines", &text);
        // The alias lines need the fleet's ssh_config; the direct line needs nothing,
        // so run both ways: with NIX_SSHOPTS for all three, without it for the direct one.
        let r = env.check(Some(&fleet.nix_sshopts()), &[], &machines);
        for (i, h) in r.json["hosts"].as_array().unwrap().iter().enumerate() {
            ensure(h["status"] == expected, || {
                format!("line {}: pin should give {expected}: {h:#}", i + 1)
            })?;
        }
        let direct_only = env.write("direct", &machines_line(&direct, Some(&key), Some(pin)));
        let r = env.check(None, &[], &direct_only);
        let h = &r.json["hosts"][0];
        ensure(h["status"] == expected, || {
            format!("{direct} without NIX_SSHOPTS: {h:#}\n{}", r.stderr)
        })?;
    }
    Ok(())
}

/// Without a pin: strict by default (an unknown host is refused), learnt with accept-new.
fn unpinned_hosts_follow_the_host_key_policy(fleet: &Fleet) -> Result<(), Failed> {
    let b2 = fleet.host("b2");
    let env = Env::new();
    let line = machines_line(
        &format!("ssh://root@{}:{}", b2.addr, b2.port),
        Some(&fleet.client_key()),
        None,
    );
    let machines = env.write("machines", &line);
    let r = env.check(None, &[], &machines);
    let h = &r.json["hosts"][0];
    ensure(h["status"] == "hostkey", || {
        format!("unknown host under strict checking: {h:#}")
    })?;
    env.write(
        "config/rbtop/config.toml",
        "[probe]\nhost_key_checking = \"accept-new\"\n",
    );
    let r = env.check(None, &[], &machines);
    let h = &r.json["hosts"][0];
    ensure(h["status"] == "up", || {
        format!("accept-new learns the host: {h:#}\n{}", r.stderr)
    })?;
    let learnt = std::fs::read_to_string(env.path("home/.ssh/known_hosts")).unwrap_or_default();
    ensure(
        learnt.contains(&format!("[{}]:{}", b2.addr, b2.port)),
        || format!("known_hosts: {learnt}"),
    )?;
    // A known key that changed is refused even under accept-new.
    let wrong = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    let t1_key = wrong
        .lines()
        .find(|l| l.starts_with(&format!("[{}]", fleet.host("t1").addr)))
        .unwrap();
    let forged = t1_key.replacen(
        &format!("[{}]", fleet.host("t1").addr),
        &format!("[{}]", b2.addr),
        1,
    );
    env.write("home/.ssh/known_hosts", &(forged + "\n"));
    let r = env.check(None, &[], &machines);
    let h = &r.json["hosts"][0];
    ensure(h["status"] == "hostkey", || {
        format!("a changed key is refused: {h:#}")
    })
}

fn remote_program_and_remote_store_are_honoured(fleet: &Fleet) -> Result<(), Failed> {
    let env = Env::new();
    // Each line fails or reports in a way only the parameter can cause.
    let text = machines_line("ssh://b1?remote-program=/opt/missing/nix-store", None, None)
        + &machines_line("ssh-ng://b2?remote-program=/bin/false", None, None)
        + &machines_line("ssh://b3?remote-program=env%20nix-store", None, None)
        + &machines_line("ssh://b1?remote-store=bogus%3A%2F%2Fnowhere", None, None);
    let machines = env.write("machines", &text);
    let r = env.check(Some(&fleet.nix_sshopts()), &[], &machines);
    let hosts = r.json["hosts"].as_array().unwrap();
    let reason = |i: usize| hosts[i]["reason"].as_str().unwrap_or_default().to_string();
    ensure(hosts[0]["status"] == "nonix", || format!("{:#}", hosts[0]))?;
    ensure(reason(0).contains("/opt/missing/nix-store"), || reason(0))?;
    ensure(hosts[1]["status"] == "error", || {
        format!("/bin/false ran: {:#}", hosts[1])
    })?;
    ensure(reason(1).contains("/bin/false"), || reason(1))?;
    // A two-word program: the store and the version both come through `env`.
    ensure(
        hosts[2]["status"] == "up" && hosts[2]["nix_version"] == "2.8.0",
        || format!("{:#}", hosts[2]),
    )?;
    ensure(hosts[3]["status"] == "error", || format!("{:#}", hosts[3]))?;
    ensure(reason(3).contains("bogus://nowhere"), || {
        format!("the remote nix-store got --store: {}", reason(3))
    })
}

/// Two hung hosts and `--timeout 3`: each costs its own timeout, at the same
/// time, and the healthy host is not held up. A concurrency check, not a speed test.
fn hung_hosts_cost_their_timeout_once(fleet: &Fleet) -> Result<(), Failed> {
    // Two hung hosts of our own. One accepts and never speaks (ssh's own
    // ConnectTimeout names it); one sends an SSH banner and then stalls, past
    // what ConnectTimeout covers, so only rbtop's deadline can end it.
    let silent = std::net::TcpListener::bind("127.0.3.1:2222").unwrap();
    let stalling = std::net::TcpListener::bind("127.0.3.2:2222").unwrap();
    let hold = |listener: std::net::TcpListener, banner: &'static [u8]| {
        std::thread::spawn(move || {
            if let Some(Ok(mut stream)) = listener.incoming().next() {
                use std::io::Write;
                let _ = stream.write_all(banner);
                std::thread::sleep(Duration::from_secs(8));
            }
        })
    };
    let held = [
        hold(silent, b""),
        hold(stalling, b"SSH-2.0-OpenSSH_9.2p1 stalled\r\n"),
    ];
    let env = Env::new();
    let text = machines_line("ssh://hung", None, None)
        + &machines_line("ssh://root@127.0.3.1:2222", None, None)
        + &machines_line("ssh://root@127.0.3.2:2222", None, None)
        + &machines_line("ssh://b1", None, None);
    let machines = env.write("machines", &text);
    let r = env.check(Some(&fleet.nix_sshopts()), &["--timeout", "3"], &machines);
    drop(held);
    let statuses: Vec<&str> = r.json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    ensure(statuses == ["timeout", "timeout", "timeout", "up"], || {
        format!("{:#}", r.json)
    })?;
    let stalled = r.json["hosts"][2]["reason"].as_str().unwrap_or_default();
    ensure(
        stalled.starts_with("no answer within 3 s while connecting over SSH"),
        || format!("rbtop's own deadline: {stalled}"),
    )?;
    ensure(r.elapsed < Duration::from_secs(6), || {
        format!("three hung hosts took {:?} with --timeout 3", r.elapsed)
    })?;
    nothing_left(&env, "after timeouts")
}

/// After a check, and after a check cut short by SIGTERM: no ssh master, no
/// control socket, no store process on the builders.
fn nothing_is_left_running(fleet: &Fleet) -> Result<(), Failed> {
    let env = Env::new();
    let r = env.check(
        Some(&fleet.nix_sshopts()),
        &["--timeout", "3"],
        &fleet.machines_file(),
    );
    ensure(r.json["summary"]["up"] == 4, || format!("{:#}", r.json))?;
    nothing_left(&env, "after a check")?;

    // SIGTERM while the hung host is still pending and the others are connected.
    let mut child = env
        .rbtop(Some(&fleet.nix_sshopts()))
        .args(["check", "--json", "--timeout", "20", "--machines"])
        .arg(fleet.machines_file())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // Masters that are up have a control socket (a connecting ssh has none yet).
    let up_masters: Vec<_> = std::fs::read_dir(env.path("run"))
        .unwrap()
        .flatten()
        .filter(|dir| dir.path().join("master").exists())
        .collect();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    ensure(!up_masters.is_empty(), || {
        "masters should have been up when SIGTERM came".to_string()
    })?;
    ensure(status.code() == Some(143), || {
        format!("SIGTERM exit status: {status:?}")
    })?;
    // Not a speed test: the hung host's probe had 17 s left, and rbtop must not wait for it.
    ensure(signalled.elapsed() < Duration::from_secs(10), || {
        format!(
            "SIGTERM waited {:?} for a pending probe",
            signalled.elapsed()
        )
    })?;
    nothing_left(&env, "after SIGTERM")
}

/// No ssh master of this environment, no store process or facts loop on any
/// builder, no control directory: give each a few seconds to go.
fn nothing_left(env: &Env, when: &str) -> Result<(), Failed> {
    let run_dir = env.path("run").display().to_string();
    for (needle, what) in [
        (run_dir.as_str(), "ssh masters"),
        ("--serve --write", "store processes on builders"),
        ("rbtop-facts", "facts loops on builders"),
        ("nix-daemon --stdio", "daemon hellos on builders"),
        (
            "tail -s 0.01 -f /dev/null",
            "the daemon hello's open pipe on builders",
        ),
    ] {
        let left = settle(needle, None, Duration::from_secs(3));
        ensure(left.is_empty(), || format!("{what} left {when}: {left:?}"))?;
    }
    let dirs = env.leftover_control_dirs();
    ensure(dirs.is_empty(), || {
        format!("control directories left {when}: {dirs:?}")
    })
}

/// The library keeps each host's session and channels: a second probe opens
/// no new connection and does no new handshake.
fn a_second_probe_reuses_the_session(fleet: &Fleet) -> Result<(), Failed> {
    use rbtop::machines::{MachinesText, Parser};
    use rbtop::probe::{Fleet as Probes, ProbeSettings};
    use rbtop::ssh::{HostKeyPolicy, SshSettings};

    let env = Env::new();
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(
        "ssh://b1; ssh-ng://b2",
        rbtop::diagnostics::Origin::BuildersFlag,
    ));
    let machines = parser.finish().machines;
    let mut ssh = SshSettings::new(
        vec!["-F".into(), fleet.ssh_config().display().to_string()],
        HostKeyPolicy::Strict,
    );
    ssh.control_parent = env.path("run");
    let settings = ProbeSettings::new(Duration::from_secs(5), 4, ssh);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run_dir = env.path("run").display().to_string();
    runtime.block_on(async {
        let probes = Probes::new(&machines, settings);
        let mut first = Vec::new();
        let mut events = probes.probe_all();
        while let Some(e) = events.recv().await {
            first.push(e);
        }
        let masters_after_first = processes_matching(&run_dir, None).len();
        // The control directories hold the masters' sockets: private.
        for dir in std::fs::read_dir(env.path("run")).unwrap().flatten() {
            use std::os::unix::fs::PermissionsExt;
            let mode = dir.metadata().unwrap().permissions().mode() & 0o777;
            ensure(mode == 0o700, || {
                format!("{:?} has mode {mode:o}", dir.path())
            })?;
        }
        let mut second = Vec::new();
        let mut events = probes.probe_all();
        while let Some(e) = events.recv().await {
            second.push(e);
        }
        let masters_after_second = processes_matching(&run_dir, None).len();
        probes.close().await;
        ensure(first.len() == 2 && second.len() == 2, || {
            "two reports per round".into()
        })?;
        for e in &first {
            ensure(
                e.report.is_up() && e.report.connect.is_some() && e.report.handshake.is_some(),
                || format!("{e:?}"),
            )?;
        }
        for e in &second {
            ensure(e.report.is_up(), || format!("{e:?}"))?;
            ensure(e.report.connect.is_none(), || {
                format!("no new connection: {e:?}")
            })?;
            ensure(e.report.handshake.is_none(), || {
                format!("no new handshake: {e:?}")
            })?;
            ensure(e.report.ping.is_some() && e.report.facts.is_some(), || {
                format!("{e:?}")
            })?;
        }
        ensure(
            masters_after_first == 2 && masters_after_second == 2,
            || format!("one master per host: {masters_after_first} then {masters_after_second}"),
        )
    })?;
    let left = settle(&run_dir, None, Duration::from_secs(3));
    ensure(left.is_empty(), || {
        format!("closed sessions left processes: {left:?}")
    })
}

fn main() {
    // The default fleet, and uts1/uts2 for TRUSTED over ssh:// (their lines
    // are in a file of their own: the other trials see the usual fleet).
    let options = fleet::FleetOptions {
        untrusted_ssh: true,
        ..Default::default()
    };
    fleet_trials::run_on_fleet(
        options,
        &[
            (
                "ssh_reports_the_daemons_trust",
                ssh_reports_the_daemons_trust,
            ),
            (
                "every_fault_gets_its_own_status",
                every_fault_gets_its_own_status,
            ),
            (
                "ssh_ng_reports_nix_version_and_trust",
                ssh_ng_reports_nix_version_and_trust,
            ),
            (
                "pinned_keys_are_enforced_through_aliases_and_ports",
                pinned_keys_are_enforced_through_aliases_and_ports,
            ),
            (
                "unpinned_hosts_follow_the_host_key_policy",
                unpinned_hosts_follow_the_host_key_policy,
            ),
            (
                "remote_program_and_remote_store_are_honoured",
                remote_program_and_remote_store_are_honoured,
            ),
            (
                "hung_hosts_cost_their_timeout_once",
                hung_hosts_cost_their_timeout_once,
            ),
            ("nothing_is_left_running", nothing_is_left_running),
            (
                "a_second_probe_reuses_the_session",
                a_second_probe_reuses_the_session,
            ),
        ],
    );
}
