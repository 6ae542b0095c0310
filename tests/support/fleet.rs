//! A real fleet of Nix remote builders on loopback, for integration tests:
//! one sshd per host with its own /nix, plus faulty hosts. The work is done by
//! `tests/fleet/fleet.sh` (see `tests/fleet/README.md`); this wraps it.
//!
//! ```ignore
//! #[path = "support/fleet.rs"]
//! mod fleet;
//! let fleet = fleet::Fleet::start(fleet::FleetOptions::default());
//! // NIX_SSHOPTS=fleet.nix_sshopts(), machines file fleet.machines_file() ...
//! ```
//!
//! Every host listens on port 2222 at a fixed 127.x address, so one fleet runs
//! on a machine at a time: `Fleet::start` blocks on a machine-wide lock
//! (`/run/rbtop-fleet/tests.lock`) that the fleet holds until it is stopped or
//! dropped. Needs root; fails loudly (panics) rather than skipping.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fleet/fleet.sh");
const LOCK_DIR: &str = "/run/rbtop-fleet";
const LOCK_FILE: &str = "/run/rbtop-fleet/tests.lock";

#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Healthy Nix 2.8 hosts `b1..bN` at 127.0.0.11, 127.0.0.12, ...
    pub healthy: usize,
    /// The faulty hosts `refused`, `hung`, `authfail`, `nonix`, `wrongkey`.
    pub faults: bool,
    /// `t1`: Nix 2.26 from a Debian trixie root (bootstrapped once, cached).
    pub trixie: bool,
    /// `liar` (127.0.1.20): a hostile store and facts loop (endless stderr
    /// without a newline, a never-ending answer, escapes). Off by default.
    pub liar: bool,
    /// `forced` (127.0.1.50): a healthy builder whose sshd forces `nix-store
    /// --serve --write` (no shell, no script). Off by default.
    pub forced: bool,
    /// `--rc-cost MS`: every login shell burns about MS ms of CPU (0: none).
    pub rc_cost_ms: u32,
    /// `--rtt MS`: hosts behind a delaying relay (0: none).
    pub rtt_ms: u32,
    /// The hosts that are up but fail a build: `untrusted`, `nofeature`,
    /// `storefull`, `rootunknown` (see tests/fleet/README.md).
    pub canary_faults: bool,
    /// `uts1` and `uts2` (127.0.1.40-41, Nix 2.26, needs `trixie`): a
    /// non-root login `rbtop-untrusted`; uts1 runs a nix-daemon that trusts
    /// root only, uts2 no daemon. Their lines are in
    /// [`Fleet::untrusted_ssh_machines`], not the machines file. Off by default.
    pub untrusted_ssh: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            healthy: 3,
            faults: true,
            trixie: true,
            liar: false,
            forced: false,
            rc_cost_ms: 0,
            rtt_ms: 0,
            canary_faults: false,
            untrusted_ssh: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetHost {
    pub name: String,
    pub addr: String,
    pub port: u16,
    /// `healthy` (b*, t1), `refused`, `hung`, `authfail`, `nonix` or `wrongkey`.
    pub kind: String,
    /// `2.8.0`, `2.26.x`; None where no Nix is reachable.
    pub nix_version: Option<String>,
    /// `base64 -w0` of the host's real `hostkey.pub`; None without an sshd.
    pub hostkey_b64: Option<String>,
}

pub struct Fleet {
    pub dir: PathBuf,
    pub hosts: Vec<FleetHost>,
    running: bool,
    lock: Option<File>,
    _tmp: TempDir,
}

fn run_script(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .env("RBTOP_FLEET_OWNER_PID", std::process::id().to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {SCRIPT}: {e}"))
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "`fleet.sh {}` failed ({}):\n--- stderr\n{}--- stdout\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn opt(field: &str) -> Option<String> {
    (field != "-").then(|| field.to_string())
}

fn parse_hosts(path: &Path) -> Vec<FleetHost> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6, "bad line in {}: {line:?}", path.display());
            FleetHost {
                name: f[0].to_string(),
                addr: f[1].to_string(),
                port: f[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad port in {line:?}")),
                kind: f[3].to_string(),
                nix_version: opt(f[4]),
                hostkey_b64: opt(f[5]),
            }
        })
        .collect()
}

impl Fleet {
    /// Starts a fleet in a fresh temporary directory; panics with the
    /// script's output if any host does not come up.
    pub fn start(opts: FleetOptions) -> Fleet {
        fs::create_dir_all(LOCK_DIR)
            .unwrap_or_else(|e| panic!("cannot create {LOCK_DIR} (root needed): {e}"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .unwrap_or_else(|e| panic!("cannot open {LOCK_FILE}: {e}"));
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {LOCK_FILE}: {e}"));

        let tmp = tempfile::Builder::new()
            .prefix("rbtop-fleet.")
            .tempdir()
            .expect("cannot create a temporary directory");
        let dir = tmp.path().to_path_buf();
        let dir_s = dir
            .to_str()
            .expect("temporary directory is not UTF-8")
            .to_string();
        let healthy = opts.healthy.to_string();
        let mut args = vec!["start", dir_s.as_str(), "--healthy", healthy.as_str()];
        if !opts.faults {
            args.push("--no-faults");
        }
        if !opts.trixie {
            args.push("--no-trixie");
        }
        if opts.untrusted_ssh {
            args.push("--untrusted-ssh");
        }
        if opts.liar {
            args.push("--liar");
        }
        if opts.forced {
            args.push("--forced");
        }
        let rc_cost = opts.rc_cost_ms.to_string();
        if opts.rc_cost_ms > 0 {
            args.extend(["--rc-cost", rc_cost.as_str()]);
        }
        let rtt = opts.rtt_ms.to_string();
        if opts.rtt_ms > 0 {
            args.extend(["--rtt", rtt.as_str()]);
        }
        if opts.canary_faults {
            args.push("--canary-faults");
        }
        let out = run_script(&args);
        if !out.status.success() {
            let _ = run_script(&["stop", &dir_s]);
            panic!("{}", describe(&args, &out));
        }
        let hosts = parse_hosts(&dir.join("hosts.tsv"));
        Fleet {
            dir,
            hosts,
            running: true,
            lock: Some(lock),
            _tmp: tmp,
        }
    }

    /// The host called `name`; panics if the fleet has none.
    pub fn host(&self, name: &str) -> &FleetHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
                panic!("fleet has no host {name:?}; it has {names:?}")
            })
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    pub fn machines_file(&self) -> PathBuf {
        self.dir.join("machines")
    }

    /// With `untrusted_ssh`: `ssh://rbtop-untrusted@uts1`, `ssh://uts1`
    /// (root), `ssh://rbtop-untrusted@uts2`.
    pub fn untrusted_ssh_machines(&self) -> PathBuf {
        self.dir.join("machines.untrusted-ssh")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The fleet as a local nix-daemon (root) sees it: `known_hosts.daemon`
    /// lacks `rootunknown`'s key (written with `--canary-faults`).
    pub fn daemon_ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config.daemon")
    }

    /// The value for `NIX_SSHOPTS`: `-F <dir>/ssh_config`.
    pub fn nix_sshopts(&self) -> String {
        format!("-F {}", self.ssh_config().display())
    }

    fn try_stop(&mut self) -> Result<(), String> {
        if self.running {
            let dir = self.dir.to_str().expect("fleet dir is UTF-8").to_string();
            let args = ["stop", dir.as_str()];
            let out = run_script(&args);
            if !out.status.success() {
                return Err(describe(&args, &out));
            }
            self.running = false;
        }
        // Releases the machine-wide lock (closing the file drops the flock).
        self.lock = None;
        Ok(())
    }

    /// Stops every host (idempotent); panics if a process survives.
    pub fn stop(&mut self) {
        if let Err(e) = self.try_stop() {
            panic!("{e}");
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Err(e) = self.try_stop() {
            eprintln!("fleet: stopping {} failed: {e}", self.dir.display());
        }
    }
}
