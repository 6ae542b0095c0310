//! `rbtop serve` against a real fleet (tests/fleet/fleet.sh) and a real
//! Prometheus (Debian's `prometheus` package) scraping it: every host's
//! state as Prometheus reports it, the exposition through `promtool check
//! metrics`, the live machines file following a host going down and up,
//! all-down keeping the last file, and a stuck scraper not stalling
//! probes. One fleet for the binary (own main). Needs root, `prometheus`
//! and `promtool`; fails, never skips, without them.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::Fleet;
use fleet_trials::ensure;
use libtest_mimic::Failed;
use sandbox::Sandbox;
use serde_json::Value;

const FLEET_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fleet/fleet.sh");

/// A running `rbtop serve`, stopped (SIGTERM) when dropped.
struct Serve {
    child: Child,
    address: SocketAddr,
    _sandbox: Sandbox,
}

impl Serve {
    fn start(fleet: &Fleet, machines: &Path, extra: &[&str]) -> Serve {
        let sandbox = Sandbox::new("rbtop-serve");
        let mut child = sandbox
            .rbtop()
            .env("NIX_CONF_DIR", sandbox.path("nixconf"))
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["serve", "--listen", "127.0.0.1:0", "--refresh", "1"])
            .args(["--timeout", "3", "--machines"])
            .arg(machines)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start rbtop serve");
        // "rbtop serve: N machine(s); metrics at http://ADDR/metrics"
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let address = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("rbtop serve ended before listening:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(rest) = line.split("metrics at http://").nth(1) {
                break rest.trim().trim_end_matches("/metrics").parse().unwrap();
            }
        };
        // Keep draining stderr so rbtop never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Serve {
            child,
            address,
            _sandbox: sandbox,
        }
    }

    fn metrics(&self) -> String {
        let (status, body) = http_get(self.address, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Stop it as systemd would; its exit status.
    fn stop(mut self) -> Option<i32> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().ok()?;
        std::os::unix::process::ExitStatusExt::signal(&status)
            .map(|s| 128 + s)
            .or(status.code())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A real Prometheus scraping `target` every second, stopped when dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: rbtop\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus (Debian package `prometheus`; tests/run-all.sh installs it): {e}")
            });
        Prometheus {
            child,
            address,
            _dir: dir,
        }
    }

    /// `query`'s instant vector: (labels, value) per series.
    fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let Ok((200, body)) = http_get(self.address, &format!("/api/v1/query?query={query}"))
        else {
            return Vec::new(); // not ready yet
        };
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        json["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap_or("NaN").parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A plain HTTP/1.0 GET (the tests' own client; what they check is the server).
fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Poll `check` until it gives a value or `limit` passes.
fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, Failed> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A metric's value for one host in an exposition.
fn value_of(metrics: &str, name: &str, host: &str) -> Option<f64> {
    let prefix = format!("{name}{{host=\"{host}\",");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

fn fleet_sh(args: &[&str]) -> Result<(), Failed> {
    let out = Command::new("bash")
        .arg(FLEET_SH)
        .args(args)
        .output()
        .unwrap();
    ensure(out.status.success(), || {
        format!(
            "fleet.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool (Debian package `prometheus`): {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ---- the tests

const EXPECTED: [(&str, f64, Option<&str>); 9] = [
    ("b1", 1.0, None),
    ("b2", 1.0, None),
    ("b3", 1.0, None),
    ("t1", 1.0, None),
    ("refused", 0.0, Some("refused")),
    ("hung", 0.0, Some("timeout")),
    ("authfail", 0.0, Some("auth")),
    ("nonix", 0.0, Some("nonix")),
    ("wrongkey", 0.0, Some("hostkey")),
];

/// Prometheus, scraping rbtop, reports every host's state; the exposition
/// passes promtool; a scraper that holds every connection open stalls
/// neither probing nor, once its connections time out, serving.
fn prometheus_reports_every_host_state(fleet: &Fleet) -> Result<(), Failed> {
    let serve = Serve::start(fleet, &fleet.machines_file(), &[]);
    let prometheus = Prometheus::start(serve.address);
    let ups = wait_for(
        Duration::from_secs(90),
        "Prometheus to see all 9 hosts",
        || {
            let ups = prometheus.query("rbtop_builder_up");
            let all = EXPECTED.iter().all(|(host, want, _)| {
                ups.iter()
                    .any(|(m, v)| m["host"] == *host && v == want && m["job"] == "rbtop")
            });
            all.then_some(ups)
        },
    )?;
    ensure(ups.len() == EXPECTED.len(), || {
        format!("one series per host: {ups:?}")
    })?;
    let failures = prometheus.query("rbtop_builder_failure_info");
    for (host, _, reason) in EXPECTED {
        let got: Vec<&Value> = failures
            .iter()
            .filter(|(m, _)| m["host"] == host)
            .map(|(m, _)| &m["reason"])
            .collect();
        let want: Vec<Value> = reason.map(Value::from).into_iter().collect();
        ensure(got.iter().copied().eq(want.iter()), || {
            format!("{host}: failure reasons {got:?}, expected {want:?}")
        })?;
    }
    let info = prometheus.query("rbtop_builder_info");
    let t1 = info.iter().find(|(m, _)| m["host"] == "t1");
    ensure(
        t1.is_some_and(|(m, _)| {
            m["nix_version"]
                .as_str()
                .is_some_and(|v| v.starts_with("2.26"))
        }),
        || format!("t1's Nix version in rbtop_builder_info: {info:?}"),
    )?;

    let metrics = serve.metrics();
    let (ok, said) = promtool(&["check", "metrics"], Some(&metrics));
    ensure(ok, || format!("promtool check metrics:\n{said}\n{metrics}"))?;

    // A stuck scraper: every connection slot held, no request sent.
    let before = value_of(&metrics, "rbtop_builder_last_probe_timestamp_seconds", "b1")
        .ok_or("no probe timestamp for b1")?;
    let held: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(serve.address).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused_meanwhile = http_get(serve.address, "/metrics").map_or(true, |(s, _)| s != 200);
    ensure(refused_meanwhile, || {
        "a 41st connection was served while 40 were held: no bound on connections".to_string()
    })?;
    // Held connections that send no header are closed after 5 s: then
    // /metrics answers again, with probes that went on meanwhile.
    let after = wait_for(
        Duration::from_secs(20),
        "/metrics once the idle connections timed out",
        || {
            let (status, body) = http_get(serve.address, "/metrics").ok()?;
            (status == 200)
                .then(|| value_of(&body, "rbtop_builder_last_probe_timestamp_seconds", "b1"))?
        },
    )?;
    drop(held);
    ensure(after > before, || {
        format!("b1 was not probed while the scraper stalled: {before} then {after}")
    })?;
    let status = serve.stop();
    ensure(status == Some(143), || {
        format!("serve's exit on SIGTERM: {status:?}")
    })
}

/// The live machines file: the usable hosts' lines as written, a comment
/// for each other; a host stopped leaves it after --out-after failures,
/// and comes back after --back-after good probes.
fn live_file_tracks_a_host_down_and_up(fleet: &Fleet) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("machines.live");
    let source = std::fs::read_to_string(fleet.machines_file()).unwrap();
    let serve = Serve::start(
        fleet,
        &fleet.machines_file(),
        &[
            "--write-machines",
            live.to_str().unwrap(),
            "--out-after",
            "2",
            "--back-after",
            "2",
        ],
    );
    let kept_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let healthy: Vec<String> = source
        .lines()
        .filter(|l| {
            ["b1", "b2", "b3", "t1"]
                .iter()
                .any(|h| l.starts_with(&format!("ssh://{h} ")))
        })
        .map(str::to_string)
        .collect();
    ensure(healthy.len() == 4, || {
        format!("the fleet's machines file: {source}")
    })?;
    let first = wait_for(Duration::from_secs(60), "the live file", || {
        std::fs::read_to_string(&live).ok()
    })?;
    ensure(kept_lines(&first) == healthy, || {
        format!(
            "kept lines, byte for byte:\n{first}\nexpected:\n{}",
            healthy.join("\n")
        )
    })?;
    for fault in ["refused", "hung", "authfail", "nonix", "wrongkey"] {
        ensure(
            first
                .lines()
                .any(|l| l.starts_with("# left out, ") && l.contains(&format!("ssh://{fault} "))),
            || format!("no comment for {fault}:\n{first}"),
        )?;
    }
    let mode = std::fs::metadata(&live).unwrap().permissions().mode() & 0o777;
    ensure(mode == 0o644, || format!("mode {mode:o}"))?;
    nix_builds_with(fleet, &live)?;

    let b2 = healthy
        .iter()
        .find(|l| l.starts_with("ssh://b2 "))
        .unwrap()
        .clone();
    fleet_sh(&["stop-host", fleet.dir.to_str().unwrap(), "b2"])?;
    let result = (|| {
        let metrics = wait_for(Duration::from_secs(60), "b2 to leave the live file", || {
            let metrics = serve.metrics();
            (value_of(&metrics, "rbtop_live_machines_kept", "b2") == Some(0.0)).then_some(metrics)
        })?;
        let failures =
            value_of(&metrics, "rbtop_builder_consecutive_failures", "b2").unwrap_or(0.0);
        ensure(failures >= 2.0, || {
            format!("b2 left after {failures} failure(s), not the 2 of --out-after")
        })?;
        let text = std::fs::read_to_string(&live).unwrap();
        ensure(!kept_lines(&text).contains(&b2), || {
            format!("b2 still kept:\n{text}")
        })?;
        ensure(
            text.lines()
                .any(|l| l.starts_with("# left out, refused: ") && l.ends_with(&b2)),
            || format!("no comment saying why b2 is out:\n{text}"),
        )?;
        ensure(kept_lines(&text).len() == 3, || {
            format!("the others stay:\n{text}")
        })
    })();
    fleet_sh(&["start-host", fleet.dir.to_str().unwrap(), "b2"])?;
    result?;
    wait_for(Duration::from_secs(90), "b2 to come back", || {
        let text = std::fs::read_to_string(&live).ok()?;
        (kept_lines(&text) == healthy).then_some(())
    })?;
    drop(serve);
    Ok(())
}

/// A real Nix (the machine's, 2.8) reads `machines` and builds a trivial
/// derivation remotely with it (`--max-jobs 0`): the live file is a
/// machines file Nix accepts, comments included.
fn nix_builds_with(fleet: &Fleet, machines: &Path) -> Result<(), Failed> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let expr = format!(
        "derivation {{ name = \"rbtop-live-{nonce}\"; system = builtins.currentSystem; \
         builder = \"/bin/sh\"; args = [ \"-c\" \"echo {nonce} > $out\" ]; }}"
    );
    let out = Command::new("timeout")
        .args([
            "120",
            "nix-build",
            "--no-out-link",
            "--max-jobs",
            "0",
            "-E",
            &expr,
        ])
        .arg("--builders")
        .arg(format!("@{}", machines.display()))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .output()
        .unwrap();
    ensure(out.status.success(), || {
        format!(
            "nix-build --builders @{}: {:?}\n{}\n{}",
            machines.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(machines).unwrap_or_default()
        )
    })
}

/// With every builder down the last file stays (Nix with none would build
/// locally), and rbtop says so in a metric.
fn all_down_keeps_the_last_file(fleet: &Fleet) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("machines");
    let b3 = std::fs::read_to_string(fleet.machines_file())
        .unwrap()
        .lines()
        .find(|l| l.starts_with("ssh://b3 "))
        .unwrap()
        .to_string();
    std::fs::write(&source, format!("{b3}\n")).unwrap();
    let live = dir.path().join("machines.live");
    let serve = Serve::start(
        fleet,
        &source,
        &[
            "--write-machines",
            live.to_str().unwrap(),
            "--out-after",
            "1",
        ],
    );
    let first = wait_for(Duration::from_secs(30), "the live file", || {
        std::fs::read_to_string(&live).ok()
    })?;
    fleet_sh(&["stop-host", fleet.dir.to_str().unwrap(), "b3"])?;
    let result = wait_for(
        Duration::from_secs(60),
        "rbtop_live_machines_all_down 1",
        || {
            serve
                .metrics()
                .lines()
                .any(|l| l == "rbtop_live_machines_all_down 1")
                .then_some(())
        },
    );
    let after = std::fs::read_to_string(&live).unwrap();
    fleet_sh(&["start-host", fleet.dir.to_str().unwrap(), "b3"])?;
    result?;
    ensure(after == first && after.contains(&b3), || {
        format!("the last file must stay:\nbefore:\n{first}\nafter:\n{after}")
    })
}

/// The source file cannot be the live file: rbtop would read its own output.
fn serve_refuses_to_overwrite_its_source(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-serve");
    let out = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--machines"])
        .arg(fleet.machines_file())
        .arg("--write-machines")
        .arg(fleet.machines_file())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure(out.status.code() == Some(2), || {
        format!("exit {:?}: {stderr}", out.status)
    })?;
    ensure(
        stderr.contains("is where the machines are read from"),
        || stderr.to_string(),
    )
}

/// `rbtop check --format prometheus --output FILE` for node_exporter's
/// textfile collector: promtool accepts it, mode 0644.
fn check_writes_a_textfile_for_node_exporter(fleet: &Fleet) -> Result<(), Failed> {
    let sandbox = Sandbox::new("rbtop-serve");
    let output: PathBuf = sandbox.path("rbtop.prom");
    let out = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .args([
            "check",
            "--format",
            "prometheus",
            "--timeout",
            "3",
            "--output",
        ])
        .arg(&output)
        .arg("--machines")
        .arg(fleet.machines_file())
        .output()
        .unwrap();
    ensure(out.status.code() == Some(1), || {
        format!("a host is down: {:?}", out.status)
    })?;
    ensure(out.stdout.is_empty(), || {
        "--output leaves stdout empty".to_string()
    })?;
    let text = std::fs::read_to_string(&output).unwrap();
    let mode = std::fs::metadata(&output).unwrap().permissions().mode() & 0o777;
    ensure(mode == 0o644, || format!("mode {mode:o}"))?;
    for (host, want, _) in EXPECTED {
        ensure(
            value_of(&text, "rbtop_builder_up", host) == Some(want),
            || format!("{host} should be {want}:\n{text}"),
        )?;
    }
    let (ok, said) = promtool(&["check", "metrics"], Some(&text));
    ensure(ok, || format!("promtool check metrics:\n{said}"))
}

fn main() {
    fleet_trials::run_on_one_fleet(&[
        (
            "prometheus_reports_every_host_state",
            prometheus_reports_every_host_state,
        ),
        (
            "live_file_tracks_a_host_down_and_up",
            live_file_tracks_a_host_down_and_up,
        ),
        ("all_down_keeps_the_last_file", all_down_keeps_the_last_file),
        (
            "serve_refuses_to_overwrite_its_source",
            serve_refuses_to_overwrite_its_source,
        ),
        (
            "check_writes_a_textfile_for_node_exporter",
            check_writes_a_textfile_for_node_exporter,
        ),
    ]);
}
