//! rbtop against the newest Nix Debian ships: fleet host `s1`, chrooted into
//! a Debian sid root (tests/fleet/fleet.sh --sid). `rbtop check` over ssh://
//! and ssh-ng:// reads the Nix version the host itself reports, the protocol
//! both sides really agree on, and trust; a build there is followed through
//! Nix's internal-json log, and a failing one ends with Nix's own reason;
//! with `builders-use-substitutes`, s1's own Nix names and pings its
//! substituters (`nix config show`, Nix >= 2.20).
//! One fleet (s1 alone) serves every trial. Needs root; fails, never skips.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::process::{Command, Output, Stdio};

use fleet::{Fleet, FleetOptions};
use fleet_trials::ensure;
use libtest_mimic::Failed;
use rbtop::protocol::{ProtocolVersion, serve, worker};
use sandbox::Sandbox;
use serde_json::Value;

const NUMBERED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/builds/numbered.nix"
);

/// The builders spec for s1 over `scheme` (`ssh` or `ssh-ng`).
fn builders(scheme: &str) -> String {
    format!("{scheme}://s1 x86_64-linux - 2 1 - - -")
}

/// What s1 itself says its Nix is (`nix-store --version` over ssh).
fn nix_version_on_s1(fleet: &Fleet) -> Result<String, Failed> {
    let out = ssh_to(fleet, &["nix-store", "--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .trim()
        .strip_prefix("nix-store (Nix) ")
        .ok_or_else(|| format!("s1's nix-store --version: {text:?}"))?;
    Ok(version.to_string())
}

fn ssh_to(fleet: &Fleet, command: &[&str]) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .arg("s1")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `major.minor` of a Nix version, for "newer than".
fn minor_of(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// s1's own hello, spoken directly over ssh with rbtop's protocol code:
/// the serve protocol's version, and the worker protocol's at its newest.
fn hellos(fleet: &Fleet) -> (serve::ServeHello, worker::WorkerHello) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut serve_child = spawn_ssh(fleet, &["nix-store", "--serve", "--write"]);
        let (mut r, mut w) = pipes(&mut serve_child);
        let serve_hello = serve::handshake(&mut r, &mut w).await.unwrap();
        drop(w);
        serve_child.wait().await.unwrap();
        let mut worker_child = spawn_ssh(fleet, &["nix-daemon", "--stdio"]);
        let (mut r, mut w) = pipes(&mut worker_child);
        let worker_hello = worker::handshake(&mut r, &mut w, worker::LATEST)
            .await
            .unwrap();
        drop(w);
        worker_child.wait().await.unwrap();
        (serve_hello, worker_hello)
    })
}

fn spawn_ssh(fleet: &Fleet, command: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .arg("s1")
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn pipes(
    child: &mut tokio::process::Child,
) -> (tokio::process::ChildStdout, tokio::process::ChildStdin) {
    (child.stdout.take().unwrap(), child.stdin.take().unwrap())
}

/// `rbtop check --json --builders <s1 over scheme>`: its one host.
fn check(fleet: &Fleet, scheme: &str) -> Result<Value, Failed> {
    let sandbox = Sandbox::new("rbtop-nn");
    let out = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .args(["check", "--json", "--builders", &builders(scheme)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    ensure(out.status.success(), || {
        format!("exit {:?}: {json:#}", out.status)
    })?;
    let hosts = json["hosts"].as_array().cloned().unwrap_or_default();
    let [host] = hosts.as_slice() else {
        return Err(format!("one host: {json:#}").into());
    };
    ensure(host["host"] == "s1" && host["status"] == "up", || {
        format!("s1 is up over {scheme}: {host:#}")
    })?;
    Ok(host.clone())
}

// ---- the trials

/// Over ssh:// and ssh-ng://: the version s1 itself reports (newer than
/// trixie's 2.26), the protocol both sides agree on, and trust.
fn check_reads_the_newest_nix_as_it_is(fleet: &Fleet) -> Result<(), Failed> {
    let version = nix_version_on_s1(fleet)?;
    ensure(minor_of(&version) > (2, 26), || {
        format!("s1 runs {version}, not a Nix newer than trixie's 2.26")
    })?;
    ensure(
        fleet.host("s1").nix_version.as_deref() == Some(version.as_str()),
        || format!("fleet.sh recorded {:?}", fleet.host("s1").nix_version),
    )?;
    let (serve_hello, worker_hello) = hellos(fleet);
    eprintln!("s1: Nix {version}; serve hello {serve_hello:?}; worker hello {worker_hello:?}");
    // The daemon's own word: the newest worker protocol and its version.
    ensure(
        worker_hello.server_version == ProtocolVersion::new(1, 38),
        || format!("Nix {version}'s daemon offers 1.38: {worker_hello:?}"),
    )?;
    ensure(
        worker_hello.nix_version.as_deref() == Some(version.as_str())
            && worker_hello.trusted == Some(true),
        || format!("root's nix-daemon --stdio, Nix {version}, trusted: {worker_hello:?}"),
    )?;
    let unknown = worker::unknown_features(&worker_hello.features);
    ensure(unknown.is_empty(), || {
        format!("features rbtop does not know: {unknown:?}")
    })?;

    let ssh = check(fleet, "ssh")?;
    ensure(ssh["nix_version"] == version.as_str(), || {
        format!("ssh://s1 reports the host's {version}: {ssh:#}")
    })?;
    // Nix 2.34 still serves 2.7 (tests/fixtures/protocol/serve-2.7-nix-2.34.hex).
    let serve_agreed = serve_hello.server_version.min(serve::CLIENT_VERSION);
    ensure(
        serve_agreed == ProtocolVersion::new(2, 7)
            && ssh["protocol_version"] == serve_agreed.to_string(),
        || format!("serve {serve_agreed} agreed over ssh://s1: {ssh:#}"),
    )?;
    // Serve carries no trust; rbtop asks the daemon in the probe's session
    // (Nix >= 2.15), and s1's root is trusted.
    ensure(ssh["trusted"] == true, || {
        format!("root on s1 is trusted, asked over ssh://: {ssh:#}")
    })?;

    let ng = check(fleet, "ssh-ng")?;
    ensure(ng["nix_version"] == version.as_str(), || {
        format!("ssh-ng://s1 reports the host's {version}: {ng:#}")
    })?;
    // rbtop's probe offers 1.37 (it needs no feature exchange); the lower of
    // the two is what the probe and Nix 2.34 really speak.
    let worker_agreed = worker_hello.server_version.min(worker::CLIENT_VERSION);
    ensure(ng["protocol_version"] == worker_agreed.to_string(), || {
        format!("worker {worker_agreed} agreed over ssh-ng://s1: {ng:#}")
    })?;
    ensure(ng["trusted"] == true, || {
        format!("root's nix-daemon --stdio is trusted: {ng:#}")
    })
}

/// `rbtop build --on s1` over `scheme` of numbered.nix: `lines` lines
/// from `seed`'s derivation, then exit `fail` (0: succeed).
fn build_on_s1(fleet: &Fleet, scheme: &str, seed: &str, lines: u32, fail: u32) -> (Output, String) {
    let sandbox = Sandbox::new("rbtop-nn");
    let out = sandbox
        .rbtop()
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .env(
            "NIX_CONFIG",
            "substituters =\nexperimental-features = nix-command",
        )
        .args(["--builders", &builders(scheme)])
        .args([
            "build", "--on", "s1", "--", NUMBERED, "--argstr", "seed", seed,
        ])
        .args([
            "--arg",
            "lines",
            &lines.to_string(),
            "--arg",
            "delay",
            "0.01",
        ])
        .args(["--arg", "fail", &fail.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// A fresh derivation name: no earlier run built it.
fn fresh_seed(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("nn{tag}{}x{nanos}", std::process::id())
}

/// Built on s1 over ssh-ng (the remote daemon's activities reach the log):
/// every line under the derivation's name, s1 named as where it ran, success,
/// and the output in s1's store.
fn a_build_on_s1_is_followed(fleet: &Fleet) -> Result<(), Failed> {
    let seed = fresh_seed("ok");
    let name = format!("rbtop-numbered-{seed}");
    let (out, text) = build_on_s1(fleet, "ssh-ng", &seed, 5, 0);
    ensure(out.status.code() == Some(0), || {
        format!("exit {:?}:\n{text}", out.status)
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let built: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&format!("{name}> ")))
        .collect();
    let want: Vec<String> = (1..=5).map(|k| format!("line {k} of 5")).collect();
    ensure(built == want, || {
        format!("the builder's lines, in order, named by derivation:\n{text}")
    })?;
    ensure(
        lines
            .iter()
            .any(|l| *l == format!("rbtop: {name}: building (ssh-ng://s1)")),
        || format!("no phase line naming ssh-ng://s1:\n{text}"),
    )?;
    ensure(
        lines
            .iter()
            .any(|l| l.starts_with("rbtop: build succeeded in ")),
        || format!("no success line:\n{text}"),
    )?;
    let output = lines
        .iter()
        .find(|l| l.starts_with("/nix/store/") && l.ends_with(&format!("-{name}")))
        .ok_or_else(|| format!("no output path:\n{text}"))?;
    let there = ssh_to(fleet, &["test", "-e", output]);
    ensure(there.status.success(), || {
        format!("{output} is not in s1's store, so it was not built there")
    })
}

/// fail=3 on s1 over ssh://: the reason is Nix 2.34's own wording (its
/// `Cannot build … Reason: builder failed with exit code 3`, relayed by the
/// local Nix), the derivation is failed on ssh://s1 with code 3.
fn a_failing_build_on_s1_gives_nix_s_reason(fleet: &Fleet) -> Result<(), Failed> {
    let seed = fresh_seed("fail");
    let name = format!("rbtop-numbered-{seed}");
    let (out, text) = build_on_s1(fleet, "ssh", &seed, 3, 3);
    ensure(out.status.code() == Some(1), || {
        format!("exit {:?} (the local Nix 2.8 gives 1):\n{text}", out.status)
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // The failure reason: the lines between the summary and the failed
    // derivation. It is s1's error, not the local Nix's closing `builder
    // for … failed with exit code 1`.
    let reason: Vec<&str> = lines
        .iter()
        .copied()
        .skip_while(|l| !l.starts_with("rbtop: build failed in "))
        .skip(1)
        .take_while(|l| !l.starts_with(&format!("rbtop: {name} failed on ")))
        .collect();
    ensure(
        reason.len() >= 2
            && reason[0].starts_with("rbtop: error: build of '/nix/store/")
            && reason[0].contains(&format!(
                "{name}.drv' on 'ssh://s1' failed: Cannot build '/nix/store/"
            ))
            && reason[1].trim() == "Reason: builder failed with exit code 3."
            && !reason.iter().any(|l| l.contains("exit code 1")),
        || format!("the reason is not Nix 2.34's own: {reason:#?}\n{text}"),
    )?;
    ensure(
        lines.iter().any(|l| {
            *l == format!("rbtop: {name} failed on ssh://s1, builder exit code 3; its last lines:")
        }),
        || format!("the failed derivation is not named with s1 and code 3:\n{text}"),
    )
}

/// With `builders-use-substitutes`, s1's Nix (2.34: `nix config show
/// substituters`, `nix store ping` a deprecated alias) says which
/// substituters it uses and reaches each: a real HTTP cache, one for
/// another store, a port nobody listens on.
fn s1_reaches_its_own_substituters(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-nn-subst");
    sandbox.write("www/good/nix-cache-info", "StoreDir: /nix/store\n");
    sandbox.write("www/gnu/nix-cache-info", "StoreDir: /gnu/store\n");
    let http = http_server::HttpServer::serve(&sandbox.path("www"))?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let base = format!("http://127.0.0.1:{}", http.port);
    let want = [
        (format!("{base}/good"), "up"),
        (format!("{base}/gnu"), "wrong-store-dir"),
        (format!("http://127.0.0.1:{dead}"), "unreachable"),
    ];
    // s1's root home is its SSH user's: its own nix.conf, removed after.
    let conf_dir = fleet.dir.join("s1/home/.config/nix");
    std::fs::create_dir_all(&conf_dir).map_err(|e| format!("{}: {e}", conf_dir.display()))?;
    let conf = conf_dir.join("nix.conf");
    let uris: Vec<&str> = want.iter().map(|(u, _)| u.as_str()).collect();
    std::fs::write(&conf, format!("substituters = {}\n", uris.join(" ")))
        .map_err(|e| format!("{}: {e}", conf.display()))?;
    sandbox.write("nixconf/nix.conf", "builders-use-substitutes = true\n");
    let out = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .args(["check", "--json", "--builders", &builders("ssh")])
        .output();
    let _ = std::fs::remove_file(&conf);
    let out = out.map_err(|e| format!("cannot run rbtop: {e}"))?;
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))?;
    let found = &json["hosts"][0]["builder_substituters"];
    let got: Vec<(String, &str)> = found["substituters"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| {
                    (
                        c["uri"].as_str().unwrap_or("").to_string(),
                        c["status"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want: Vec<(String, &str)> = want.to_vec();
    ensure(got == want && found["error"].is_null(), || {
        format!("s1's own substituters: {got:?}, wanted {want:?}: {json:#}")
    })
}

fn main() {
    fleet_trials::run_on_fleet(
        FleetOptions {
            healthy: 0,
            faults: false,
            trixie: false,
            sid: true,
            ..Default::default()
        },
        &[
            (
                "check_reads_the_newest_nix_as_it_is",
                check_reads_the_newest_nix_as_it_is,
            ),
            ("a_build_on_s1_is_followed", a_build_on_s1_is_followed),
            (
                "a_failing_build_on_s1_gives_nix_s_reason",
                a_failing_build_on_s1_gives_nix_s_reason,
            ),
            (
                "s1_reaches_its_own_substituters",
                s1_reaches_its_own_substituters,
            ),
        ],
    );
}
