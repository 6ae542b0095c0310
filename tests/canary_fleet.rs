//! `rbtop check --build` against a real fleet (tests/fleet/fleet.sh with
//! `--canary-faults`): real sshd, real Nix 2.8 builders, real failures.
//! Healthy hosts build the canary with each stage timed; each failing host
//! gets its class (not-trusted over ssh:// and ssh-ng://, feature,
//! store-full); through a local nix-daemon, root's known_hosts decide
//! (`hostkey` where the user's view is fine), and an untrusted local user's
//! pin is reported as ignored (`not-pinned`). One fleet serves every trial
//! (own main, libtest-mimic). Needs root; fails, never skips.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::{Fleet, FleetOptions};
use fleet_trials::{builder_namespaces, ensure, processes_matching, settle};
use http_server::HttpServer;
use libtest_mimic::Failed;
use sandbox::Sandbox;
use serde_json::Value;

const DAEMON_SOCKET: &str = "/nix/var/nix/daemon-socket/socket";
/// The unprivileged local user of the daemon trials.
const LOCAL_USER: &str = "rbtop-canary";

fn main() {
    fleet_trials::run_on_fleet(
        FleetOptions {
            healthy: 2,
            faults: false,
            trixie: false,
            canary_faults: true,
            ..Default::default()
        },
        &[
            ("as_root_every_host_gets_ok_or_its_class", as_root_classes),
            (
                "through_the_daemon_root_s_known_hosts_decide",
                daemon_hostkey,
            ),
            (
                "an_untrusted_user_s_pin_is_ignored_by_the_daemon",
                daemon_not_pinned,
            ),
            (
                "a_hung_canary_costs_its_deadline_and_leaves_nothing",
                hung_canary,
            ),
            (
                "as_root_the_daemon_s_ssh_view_is_checked_without_building",
                daemon_view_without_building,
            ),
            (
                "substituters_are_checked_as_builders_are",
                substituters_are_checked_as_builders_are,
            ),
            (
                "serve_exports_canaries_and_cancels_them_on_stop",
                serve_exports_canaries,
            ),
            (
                "with_builders_use_substitutes_each_builder_reaches_its_own",
                builders_reach_their_own_substituters,
            ),
        ],
    )
}

/// `rbtop check --build --json` and its exit code.
fn check_build(cmd: &mut Command) -> Result<(i32, Value, String), Failed> {
    let out = cmd.output().map_err(|e| format!("cannot run rbtop: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))?;
    Ok((out.status.code().unwrap_or(-1), json, stderr))
}

fn host<'a>(json: &'a Value, uri: &str) -> Result<&'a Value, Failed> {
    json["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["uri"] == uri))
        .ok_or_else(|| format!("no host {uri} in {json:#}").into())
}

fn canary<'a>(json: &'a Value, uri: &str) -> Result<&'a Value, Failed> {
    Ok(&host(json, uri)?["canary"])
}

/// Built, every stage timed, the output reported and here (copied back)
/// without a GC root.
fn ensure_ok(json: &Value, uri: &str, roots: &str) -> Result<(), Failed> {
    let c = canary(json, uri)?;
    ensure(c["status"] == "ok" && c["reason"].is_null(), || {
        format!("{uri}: expected ok, got {c:#}")
    })?;
    for stage in ["upload_ms", "build_ms", "download_ms", "total_ms"] {
        ensure(c[stage].as_f64().is_some_and(|ms| ms >= 0.0), || {
            format!("{uri}: {stage} missing in {c:#}")
        })?;
    }
    let message = c["message"].as_str().unwrap_or("");
    let output = message
        .split_whitespace()
        .find(|w| w.starts_with("/nix/store/") && w.ends_with("-rbtop-canary"))
        .ok_or_else(|| format!("{uri}: no output path in {message:?}"))?;
    ensure(Path::new(output).exists(), || {
        format!("{uri}: {output} was not copied back")
    })?;
    ensure(!roots.contains(output), || {
        format!("{uri}: {output} has a GC root:\n{roots}")
    })
}

fn ensure_failed(json: &Value, uri: &str, class: &str, says: &str) -> Result<(), Failed> {
    let c = canary(json, uri)?;
    let message = c["message"].as_str().unwrap_or("");
    ensure(
        c["status"] == "failed" && c["reason"] == class && message.contains(says),
        || format!("{uri}: expected failed/{class} saying {says:?}, got {c:#}"),
    )
}

fn gc_roots() -> Result<String, Failed> {
    let out = Command::new("nix-store")
        .args(["--gc", "--print-roots"])
        .output()
        .map_err(|e| format!("nix-store --gc --print-roots: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Nothing of a canary runs anywhere once rbtop is done.
fn ensure_nothing_left() -> Result<(), Failed> {
    let left = settle("rbtop-canary", None, Duration::from_secs(10));
    ensure(left.is_empty(), || {
        format!("canary processes left: {left:?}")
    })
}

fn no_daemon_socket() -> Result<(), Failed> {
    ensure(!Path::new(DAEMON_SOCKET).exists(), || {
        format!(
            "{DAEMON_SOCKET} exists: another nix-daemon runs on this machine; these trials start their own"
        )
    })
}

fn as_root_classes(fleet: &Fleet) -> Result<(), Failed> {
    no_daemon_socket()?;
    let sandbox = Sandbox::new("rbtop-canary");
    // Every host but slowbuild (its own trial), and one that is not up.
    let machines: String = std::fs::read_to_string(fleet.machines_file())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("slowbuild"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "ssh://rbtop-nowhere.invalid x86_64-linux - 1 1 - - -\n";
    let machines = sandbox.write("machines", &machines);
    let started = Instant::now();
    let (code, json, stderr) = check_build(
        sandbox
            .rbtop()
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["--machines"])
            .arg(&machines)
            .args(["check", "--build", "--json", "--timeout", "10"]),
    )?;
    eprintln!(
        "check --build on {} hosts: {:?}",
        json["hosts"].as_array().map_or(0, Vec::len),
        started.elapsed()
    );
    let roots = gc_roots()?;
    for uri in ["ssh://b1", "ssh://b2", "ssh://rootunknown"] {
        ensure_ok(&json, uri, &roots)?;
    }
    for uri in [
        "ssh://rbtop-nixremote@untrusted",
        "ssh-ng://rbtop-nixremote@untrusted",
    ] {
        ensure(host(&json, uri)?["status"] == "up", || {
            format!("{uri} must be up (the probe cannot tell): {json:#}")
        })?;
        ensure_failed(&json, uri, "not-trusted", "not privileged to build")?;
    }
    ensure_failed(&json, "ssh://nofeature", "feature", "rbtop-big")?;
    ensure_failed(
        &json,
        "ssh://storefull",
        "store-full",
        "No space left on device",
    )?;
    let nowhere = canary(&json, "ssh://rbtop-nowhere.invalid")?;
    ensure(
        nowhere["status"] == "skipped" && nowhere["total_ms"].is_null(),
        || format!("a host that is not up is skipped: {nowhere:#}"),
    )?;
    ensure(code == 1, || {
        format!("exit status {code}, expected 1; stderr: {stderr}")
    })?;
    ensure_nothing_left()
}

/// A nix-daemon of this machine for one trial, with `ssh_config` as root's
/// SSH view; stopped (and its socket removed) when dropped.
struct LocalDaemon(Child);

impl LocalDaemon {
    fn start(ssh_config: &Path) -> Result<LocalDaemon, Failed> {
        no_daemon_socket()?;
        let child = Command::new("nix-daemon")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NIX_SSHOPTS", format!("-F {}", ssh_config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nix-daemon: {e}"))?;
        let daemon = LocalDaemon(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(DAEMON_SOCKET).exists() {
            if Instant::now() > deadline {
                return Err(format!("nix-daemon made no {DAEMON_SOCKET} in 10 s").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }
}

impl Drop for LocalDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(DAEMON_SOCKET);
    }
}

fn daemon_hostkey(fleet: &Fleet) -> Result<(), Failed> {
    let _daemon = LocalDaemon::start(&fleet.daemon_ssh_config())?;
    let sandbox = Sandbox::new("rbtop-canary");
    let machines = sandbox.write(
        "machines",
        "ssh://b1 x86_64-linux - 2 1 - - -\nssh://rootunknown x86_64-linux - 2 1 - - -\n",
    );
    let (code, json, stderr) = check_build(
        sandbox
            .rbtop()
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["--machines"])
            .arg(&machines)
            .args(["check", "--build", "--json"]),
    )?;
    ensure(host(&json, "ssh://rootunknown")?["status"] == "up", || {
        format!("the user's view must find rootunknown up: {json:#}")
    })?;
    ensure_ok(&json, "ssh://b1", &gc_roots()?)?;
    ensure_failed(
        &json,
        "ssh://rootunknown",
        "hostkey",
        "Host key verification failed",
    )?;
    ensure(code == 1, || {
        format!("exit status {code}, expected 1; stderr: {stderr}")
    })?;
    ensure_nothing_left()
}

fn run(cmd: &mut Command) -> Result<(), Failed> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    ensure(out.status.success(), || {
        format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// `LOCAL_USER`, made if missing.
fn ensure_local_user() -> Result<(), Failed> {
    let exists = Command::new("id")
        .arg(LOCAL_USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        run(Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .arg(LOCAL_USER))?;
    }
    Ok(())
}

/// The fleet's SSH view for `LOCAL_USER`: its own copies of the key,
/// known_hosts and ssh_config (the fleet's directory is root's alone).
fn user_ssh_view(fleet: &Fleet, sandbox: &Sandbox) -> Result<PathBuf, Failed> {
    let key = sandbox.path("ssh/client_key");
    let known = sandbox.path("ssh/known_hosts");
    std::fs::create_dir_all(sandbox.path("ssh")).unwrap();
    std::fs::copy(fleet.client_key(), &key).unwrap();
    std::fs::copy(fleet.known_hosts(), &known).unwrap();
    let config = std::fs::read_to_string(fleet.ssh_config())
        .unwrap()
        .replace(
            &fleet.client_key().display().to_string(),
            &key.display().to_string(),
        )
        .replace(
            &fleet.known_hosts().display().to_string(),
            &known.display().to_string(),
        );
    Ok(sandbox.write("ssh/config", &config))
}

fn daemon_not_pinned(fleet: &Fleet) -> Result<(), Failed> {
    ensure_local_user()?;
    let _daemon = LocalDaemon::start(&fleet.daemon_ssh_config())?;
    let sandbox = Sandbox::new("rbtop-canary");
    let config = user_ssh_view(fleet, &sandbox)?;
    let machines = sandbox.write("machines", "ssh://b1 x86_64-linux - 2 1 - - -\n");
    // The sandbox (0700, root's) becomes the user's.
    let root = sandbox.path("");
    run(Command::new("chown")
        .args(["-R", &format!("{LOCAL_USER}:")])
        .arg(&root))?;
    let cmd = sandbox.rbtop();
    let program = cmd.get_program().to_owned();
    let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut as_user = Command::new("setpriv");
    as_user
        .env_clear()
        .envs(envs)
        .env("NIX_SSHOPTS", format!("-F {}", config.display()))
        .args([
            "--reuid",
            LOCAL_USER,
            "--regid",
            LOCAL_USER,
            "--clear-groups",
            "--",
        ])
        .arg(program)
        .arg("--machines")
        .arg(&machines)
        .args(["check", "--build", "--json"]);
    let (code, json, stderr) = check_build(&mut as_user)?;
    ensure(host(&json, "ssh://b1")?["status"] == "up", || {
        format!("the user reaches b1 itself: {json:#}\nstderr: {stderr}")
    })?;
    ensure_failed(
        &json,
        "ssh://b1",
        "not-pinned",
        // Nix 2.8's daemon ignores it silently: no builders on its side.
        "ignored --builders (this user is not trusted there): error: unable to start any build; either increase '--max-jobs' or enable remote builds",
    )?;
    ensure(code == 1, || format!("exit status {code}, expected 1"))?;
    // Not root: said, and root's view is not claimed.
    let checked = &json["checked_as"];
    ensure(
        checked["user"] == LOCAL_USER
            && checked["daemon_account"] == "root"
            && checked["daemon_view_checked"] == false
            && checked["note"]
                .as_str()
                .is_some_and(|n| n.contains("the nix-daemon") && n.contains("connects as root")),
        || format!("checked_as must name {LOCAL_USER} and the daemon's root: {checked:#}"),
    )?;
    ensure(host(&json, "ssh://b1")?.get("daemon").is_none(), || {
        format!("no daemon view without root: {json:#}")
    })?;
    ensure_nothing_left()
}

/// As root with a local nix-daemon, `rbtop check` (no build) checks root's
/// SSH view too (the daemon's own NIX_SSHOPTS, read from its environment):
/// `rootunknown`, up for the check's options, is `hostkey` for the daemon;
/// b1 is up for both, with the identity ssh will offer. Exit status 1.
fn daemon_view_without_building(fleet: &Fleet) -> Result<(), Failed> {
    let daemon = LocalDaemon::start(&fleet.daemon_ssh_config())?;
    let sandbox = Sandbox::new("rbtop-canary");
    let machines = sandbox.write(
        "machines",
        "ssh://b1 x86_64-linux - 2 1 - - -\nssh://rootunknown x86_64-linux - 2 1 - - -\n",
    );
    let check = |json: bool| {
        let mut cmd = sandbox.rbtop();
        cmd.env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["--machines"])
            .arg(&machines)
            .arg("check");
        if json {
            cmd.arg("--json");
        }
        cmd.output()
    };
    let out = check(true).map_err(|e| format!("cannot run rbtop: {e}"))?;
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))?;
    let checked = &json["checked_as"];
    let pid = daemon.0.id();
    ensure(
        checked["user"] == "root"
            && checked["daemon_view_checked"] == true
            && checked["daemon_ssh_options"]
                == format!("NIX_SSHOPTS of the nix-daemon (pid {pid})"),
        || {
            format!(
                "the daemon's own NIX_SSHOPTS (pid {pid}) must be what was checked: {checked:#}"
            )
        },
    )?;
    let rootunknown = host(&json, "ssh://rootunknown")?;
    ensure(
        rootunknown["status"] == "up"
            && rootunknown["daemon"]["status"] == "hostkey"
            && rootunknown["daemon"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("Host key verification failed")),
        || format!("rootunknown: up for the check, hostkey for the daemon: {rootunknown:#}"),
    )?;
    let b1 = host(&json, "ssh://b1")?;
    let key = fleet.client_key().display().to_string();
    ensure(
        b1["daemon"]["status"] == "up"
            && b1["daemon"]["account"] == "root"
            && b1["daemon"]["identity"] == key.as_str(),
        || format!("b1 is up for the daemon too, with {key}: {b1:#}"),
    )?;
    ensure(out.status.code() == Some(1), || {
        format!("exit status {:?}, expected 1", out.status.code())
    })?;
    let text = check(false).map_err(|e| format!("cannot run rbtop: {e}"))?;
    let text = String::from_utf8_lossy(&text.stdout);
    ensure(
        text.contains(&format!("the nix-daemon's view (root; NIX_SSHOPTS of the nix-daemon (pid {pid})):"))
            && text.contains("rootunknown: hostkey for the daemon: host key not trusted (ssh: Host key verification failed.)")
            && text.contains("but not for the daemon: builds sent there will fail")
            && text.contains(&format!("b1: up, identity {key} (ssh config)")),
        || format!("the text says the daemon's view per host:\n{text}"),
    )?;
    drop(daemon);
    // The daemon view's ssh masters carry its NIX_SSHOPTS: none may be left.
    let config = fleet.daemon_ssh_config().display().to_string();
    let left = settle(&config, None, Duration::from_secs(10));
    ensure(left.is_empty(), || {
        format!("ssh of the daemon's view left: {left:?}")
    })
}

/// `rbtop check --json` checks every configured substituter as it checks
/// builders: a real HTTP cache (`python3 -m http.server` serving a
/// `nix-cache-info`: up, with its priority), one whose StoreDir is not
/// this machine's, a 404, a port nobody listens on, `file://` caches (one
/// good, one missing), and `ssh://` stores through the same prober (b1 up,
/// an unknown host `dns`, as for builders). Builders' results are
/// unchanged and the exit status still says only whether builders are up.
fn substituters_are_checked_as_builders_are(fleet: &Fleet) -> Result<(), Failed> {
    no_daemon_socket()?;
    let sandbox = Sandbox::new("rbtop-subst");
    sandbox.write(
        "www/good/nix-cache-info",
        "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n",
    );
    sandbox.write("www/gnu/nix-cache-info", "StoreDir: /gnu/store\n");
    sandbox.write(
        "files/cache/nix-cache-info",
        "StoreDir: /nix/store\nPriority: 50\n",
    );
    let http = HttpServer::serve(&sandbox.path("www"))?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port(); // closed again: nothing listens there
    let base = format!("http://127.0.0.1:{}", http.port);
    let file_cache = format!("file://{}", sandbox.path("files/cache").display());
    let no_cache = format!("file://{}", sandbox.path("files/none").display());
    sandbox.write(
        "nixconf/nix.conf",
        &format!(
            "substituters = {base}/good?priority=10 {base}/gnu {file_cache} ssh://b1\n\
             extra-substituters = {base}/missing http://127.0.0.1:{dead} {no_cache} ssh://no-such-host.invalid\n"
        ),
    );
    let machines = sandbox.write("machines", "ssh://b1 x86_64-linux - 2 1 - - -\n");
    let out = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .args(["--machines"])
        .arg(&machines)
        .args(["check", "--json"])
        .output()
        .map_err(|e| format!("cannot run rbtop: {e}"))?;
    let json = json_stdout(&out)?;
    let subs = json["substituters"]
        .as_array()
        .ok_or_else(|| format!("no substituters: {json:#}"))?;
    let got = uri_statuses(subs);
    let want: Vec<(String, String)> = [
        (format!("{base}/good?priority=10"), "up"),
        (format!("{base}/gnu"), "wrong-store-dir"),
        (file_cache.clone(), "up"),
        ("ssh://b1".to_string(), "up"),
        (format!("{base}/missing"), "http-error"),
        (format!("http://127.0.0.1:{dead}"), "unreachable"),
        (no_cache.clone(), "unreachable"),
        ("ssh://no-such-host.invalid".to_string(), "dns"),
    ]
    .into_iter()
    .map(|(u, s)| (u, s.to_string()))
    .collect();
    ensure(got == want, || {
        format!("substituters (uri, status):\n{got:#?}\nwanted:\n{want:#?}\n{json:#}")
    })?;
    let field = |i: usize, name: &str| subs[i][name].clone();
    ensure(
        field(0, "priority") == 10
            && field(2, "priority") == 50
            && field(0, "reason").is_null()
            && field(0, "ms").as_f64().is_some_and(|ms| ms > 0.0),
        || format!("priorities and timings: {subs:#?}"),
    )?;
    ensure(
        field(1, "reason")
            .as_str()
            .is_some_and(|r| r.contains("its StoreDir is /gnu/store")),
        || format!("the wrong StoreDir is named: {:#}", subs[1]),
    )?;
    ensure(
        field(4, "reason")
            .as_str()
            .is_some_and(|r| r.contains("404")),
        || format!("the 404 is named: {:#}", subs[4]),
    )?;
    ensure(
        field(7, "reason")
            .as_str()
            .is_some_and(|r| r.contains("Could not resolve hostname")),
        || format!("ssh's own words for the unknown host: {:#}", subs[7]),
    )?;
    ensure(host(&json, "ssh://b1")?["status"] == "up", || {
        format!("the builder is still checked: {json:#}")
    })?;
    ensure(out.status.code() == Some(0), || {
        format!(
            "substituters do not change the exit status (builders all up): {:?}",
            out.status.code()
        )
    })
}

/// rbtop's stdout as JSON, or both its outputs in the error.
fn json_stdout(out: &std::process::Output) -> Result<Value, Failed> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

/// `(uri, status)` of each substituter checked.
fn uri_statuses(checks: &[Value]) -> Vec<(String, String)> {
    checks
        .iter()
        .map(|s| {
            (
                s["uri"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A nix.conf for one builder's SSH user (root there), removed when dropped
/// so other trials see the fleet's own (`substituters =`).
struct BuilderUserConf(PathBuf);

impl BuilderUserConf {
    fn write(fleet: &Fleet, host: &str, text: &str) -> Result<BuilderUserConf, Failed> {
        let dir = fleet.dir.join(host).join("home/.config/nix");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("nix.conf");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(BuilderUserConf(path))
    }
}

impl Drop for BuilderUserConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// With `builders-use-substitutes = true` here, `rbtop check --json` asks
/// every builder that is up which substituters *its* Nix uses and pings
/// each from there (real Nix 2.8 on b1 and b2, a real HTTP cache from
/// `python3 -m http.server`): b1's user config lists a good cache, one for
/// another store, a 404, a port nobody listens on and a missing `file://`
/// cache, which this machine's own substituters (the good one only) would
/// never show; b2 has none; a host that is down is not asked. Nothing is
/// left running on the builders, nothing is created there, and without the
/// setting nothing is asked.
fn builders_reach_their_own_substituters(fleet: &Fleet) -> Result<(), Failed> {
    no_daemon_socket()?;
    let sandbox = Sandbox::new("rbtop-bsubst");
    sandbox.write("www/good/nix-cache-info", "StoreDir: /nix/store\n");
    sandbox.write("www/gnu/nix-cache-info", "StoreDir: /gnu/store\n");
    let http = HttpServer::serve(&sandbox.path("www"))?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let base = format!("http://127.0.0.1:{}", http.port);
    // The fleet shares this machine's network, not its files: the missing
    // cache is looked for inside b1's own mount namespace.
    let missing_file = "file:///var/empty/rbtop-no-cache";
    let _b1 = BuilderUserConf::write(
        fleet,
        "b1",
        &format!(
            "substituters = {base}/good?priority=5 {base}/gnu {base}/missing http://127.0.0.1:{dead} {missing_file}\n"
        ),
    )?;
    let machines = sandbox.write(
        "machines",
        "ssh://b1 x86_64-linux - 2 1 - - -\nssh://b2 x86_64-linux - 2 1 - - -\nssh://no-such-host.invalid x86_64-linux - 2 1 - - -\n",
    );
    let check = |use_substitutes: bool, json: bool| {
        sandbox.write(
            "nixconf/nix.conf",
            &format!("builders-use-substitutes = {use_substitutes}\nsubstituters = {base}/good\n"),
        );
        let mut cmd = sandbox.rbtop();
        cmd.env("NIX_CONF_DIR", sandbox.path("nixconf"))
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["--machines"])
            .arg(&machines)
            .arg("check");
        if json {
            cmd.arg("--json");
        }
        cmd.output().map_err(|e| format!("cannot run rbtop: {e}"))
    };
    let out = check(true, true)?;
    let json = json_stdout(&out)?;
    let b1 = &host(&json, "ssh://b1")?["builder_substituters"];
    let got = uri_statuses(
        b1["substituters"]
            .as_array()
            .ok_or_else(|| format!("b1 has no builder_substituters: {json:#}"))?,
    );
    let want: Vec<(String, String)> = [
        (format!("{base}/good?priority=5"), "up"),
        (format!("{base}/gnu"), "wrong-store-dir"),
        (format!("{base}/missing"), "bad-cache-info"),
        (format!("http://127.0.0.1:{dead}"), "unreachable"),
        (missing_file.to_string(), "unreachable"),
    ]
    .into_iter()
    .map(|(u, s)| (u, s.to_string()))
    .collect();
    ensure(got == want && b1["error"].is_null(), || {
        format!("b1's own substituters (uri, status):\n{got:#?}\nwanted:\n{want:#?}\n{b1:#}")
    })?;
    let sub = |i: usize| &b1["substituters"][i];
    ensure(
        sub(0)["priority"] == 5
            && sub(0)["ms"].as_f64().is_some_and(|ms| ms > 0.0)
            && sub(1)["reason"]
                .as_str()
                .is_some_and(|r| r.contains("is for Nix stores with prefix '/gnu/store'"))
            && sub(3)["reason"]
                .as_str()
                .is_some_and(|r| r.contains("/nix-cache-info") && r.contains("connect")),
        || format!("Nix's own words, from b1: {b1:#}"),
    )?;
    let b2 = &host(&json, "ssh://b2")?["builder_substituters"];
    ensure(
        b2["error"].is_null() && b2["substituters"].as_array().is_some_and(Vec::is_empty),
        || format!("b2's Nix uses no substituters (the fleet's `substituters =`): {b2:#}"),
    )?;
    let down = host(&json, "ssh://no-such-host.invalid")?;
    ensure(down.get("builder_substituters").is_none(), || {
        format!("a host that is down is not asked: {down:#}")
    })?;
    ensure(
        json["substituters"].as_array().map(Vec::len) == Some(1),
        || {
            format!(
                "this machine's own list is still its own: {:#}",
                json["substituters"]
            )
        },
    )?;
    ensure(out.status.code() == Some(1), || {
        format!(
            "exit status {:?}: 1 for the host that is down, as without the setting",
            out.status.code()
        )
    })?;
    let text = check(true, false)?;
    let text = String::from_utf8_lossy(&text.stdout);
    ensure(
        text.contains("substituters as each builder reaches them (builders-use-substitutes):\nb1: 1 of 5 usable\n")
            && text.contains(&format!("  {base}/gnu: wrong-store-dir after "))
            && text.contains("b2: none configured\n"),
        || format!("the text says each builder's reach:\n{text}"),
    )?;
    let namespaces = builder_namespaces(fleet);
    let left = settle(
        "rbtop-substituters",
        Some(&namespaces),
        Duration::from_secs(10),
    );
    ensure(left.is_empty(), || {
        format!("left on the builders: {left:?}")
    })?;
    // b1 shares this machine's /var: had Nix opened the missing cache, it
    // would have made it.
    ensure(!Path::new("/var/empty/rbtop-no-cache").exists(), || {
        "checking a missing file:// cache created it".to_string()
    })?;
    let off = check(false, true)?;
    let off: Value = serde_json::from_slice(&off.stdout).map_err(|e| format!("not JSON: {e}"))?;
    ensure(
        host(&off, "ssh://b1")?
            .get("builder_substituters")
            .is_none(),
        || format!("without builders-use-substitutes nothing is asked: {off:#}"),
    )
}

fn hung_canary(fleet: &Fleet) -> Result<(), Failed> {
    no_daemon_socket()?;
    let sandbox = Sandbox::new("rbtop-canary");
    let machines = sandbox.write(
        "machines",
        "ssh://slowbuild x86_64-linux - 2 1 - - -\nssh://b1 x86_64-linux - 2 1 - - -\n",
    );
    let (code, json, stderr) = check_build(
        sandbox
            .rbtop()
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["--machines"])
            .arg(&machines)
            .args(["check", "--build", "--json", "--build-timeout", "3"]),
    )?;
    ensure_failed(
        &json,
        "ssh://slowbuild",
        "timeout",
        "no result within 3s; cancelled (rbtop: ssh://slowbuild: nothing of rbtop-canary left running)",
    )?;
    let slow = canary(&json, "ssh://slowbuild")?;
    ensure(
        slow["total_ms"].as_f64().is_some_and(|ms| ms >= 3000.0) && slow["download_ms"].is_null(),
        || format!("the deadline was spent, the copy back never reached: {slow:#}"),
    )?;
    // The hung host held no one back.
    ensure_ok(&json, "ssh://b1", &gc_roots()?)?;
    ensure(code == 1, || {
        format!("exit status {code}, expected 1; stderr: {stderr}")
    })?;
    let namespaces = builder_namespaces(fleet);
    let left = settle("sleep 3617", Some(&namespaces), Duration::from_secs(10));
    ensure(left.is_empty(), || {
        format!("the hung builder is still there: {left:?}")
    })?;
    ensure_nothing_left()
}

/// `GET path` on `address`: the status and the body.
fn http_get(address: &str, path: &str) -> Result<(u16, String), Failed> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(address).map_err(|e| format!("{address}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{address}: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("{address}: {e}"))?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {response:?}"))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// `rbtop serve --build-every SECS` with `machines`, listening on a free
/// port: the child and the address.
fn start_serve(
    fleet: &Fleet,
    sandbox: &Sandbox,
    machines: &Path,
) -> Result<(Child, String), Failed> {
    use std::io::BufRead;
    let mut serve = sandbox
        .rbtop()
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .args(["--machines"])
        .arg(machines)
        .args(["serve", "--listen", "127.0.0.1:0", "--refresh", "1"])
        .args(["--build-every", "60", "--build-timeout", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start rbtop serve: {e}"))?;
    let mut stderr = std::io::BufReader::new(serve.stderr.take().unwrap());
    let address = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = serve.kill();
            return Err("rbtop serve ended before listening".into());
        }
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            break rest.trim().trim_end_matches("/metrics").to_string();
        }
    };
    // Keep draining stderr so serve never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut sink);
    });
    Ok((serve, address))
}

/// Stop serve as systemd does (SIGTERM); its exit status.
fn stop_serve(mut serve: Child) -> Result<Option<i32>, Failed> {
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = serve
        .wait()
        .map_err(|e| format!("waiting for serve: {e}"))?;
    Ok(status.code())
}

/// `rbtop serve --build-every`: the canaries of the hosts that are up are
/// exported (success and duration, from a real build); a canary still
/// building when serve is stopped (SIGTERM) is cancelled, on its builder
/// too, before serve exits.
fn serve_exports_canaries(fleet: &Fleet) -> Result<(), Failed> {
    no_daemon_socket()?;
    let sandbox = Sandbox::new("rbtop-canary");
    let machines = sandbox.write(
        "machines",
        "ssh://b1 x86_64-linux - 2 1 - - -\nssh://b2 x86_64-linux - 2 1 - - -\n",
    );
    let (serve, address) = start_serve(fleet, &sandbox, &machines)?;
    let exported = (|| {
        let started = Instant::now();
        let metrics = loop {
            let (status, body) = http_get(&address, "/metrics")?;
            ensure(status == 200, || format!("GET /metrics: {status}"))?;
            if body.contains(r#"rbtop_builder_canary_success{host="b2",uri="ssh://b2"}"#) {
                break body;
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("no canary result in 120 s:\n{body}").into());
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        for host in ["b1", "b2"] {
            let success =
                format!(r#"rbtop_builder_canary_success{{host="{host}",uri="ssh://{host}"}} 1"#);
            ensure(metrics.contains(&success), || {
                format!("{success}:\n{metrics}")
            })?;
            let duration = format!(
                r#"rbtop_builder_canary_duration_seconds{{host="{host}",uri="ssh://{host}"}} "#
            );
            let seconds: f64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&duration))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no {duration}in\n{metrics}"))?;
            ensure(seconds > 0.0, || format!("{host}: canary took {seconds} s"))?;
        }
        Ok::<(), Failed>(())
    })();
    let code = stop_serve(serve)?;
    exported?;
    ensure(code == Some(143), || {
        format!("serve's exit status: {code:?}")
    })?;
    ensure_nothing_left()?;

    // Stopped while slowbuild's canary hangs on its builder.
    let machines = sandbox.write(
        "machines-slow",
        "ssh://slowbuild x86_64-linux - 2 1 - - -\n",
    );
    let (serve, _) = start_serve(fleet, &sandbox, &machines)?;
    let namespaces = builder_namespaces(fleet);
    let started = Instant::now();
    while processes_matching("sleep 3617", Some(&namespaces)).is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = stop_serve(serve);
            return Err("slowbuild's canary never started building".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = stop_serve(serve)?;
    ensure(code == Some(143), || {
        format!("serve's exit status: {code:?}")
    })?;
    // Gone when serve has exited, not merely soon after: serve waited for
    // the cancel, the builder's check included.
    let left = processes_matching("sleep 3617", Some(&namespaces));
    ensure(left.is_empty(), || {
        format!("the hung canary was still on its builder as serve exited: {left:?}")
    })?;
    let left = processes_matching("rbtop-canary", None);
    ensure(left.is_empty(), || {
        format!("canary processes were still running as serve exited: {left:?}")
    })
}
