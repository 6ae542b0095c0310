//! Local Nix commands: instantiating a derivation, and a build started here
//! that takes everything it started with it when it ends.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use tempfile::TempDir;

use super::{NIX_CONFIG, Proc, descendants, kill_tree};
use crate::fleet::Fleet;
use crate::fleet_trials::ensure;

/// `nix-instantiate <file> <args>`: the derivation's store path.
pub fn instantiate(file: &Path, args: &[&str]) -> Result<String, Failed> {
    let out = Command::new("nix-instantiate")
        .arg(file)
        .args(args)
        .env("NIX_CONFIG", NIX_CONFIG)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nix-instantiate: {e}"))?;
    let drv = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure(
        out.status.success() && drv.starts_with("/nix/store/") && drv.ends_with(".drv"),
        || {
            format!(
                "nix-instantiate {} {args:?}: {}: {drv}\n{}",
                file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        },
    )?;
    Ok(drv)
}

/// `nix-store --query --references <path>`.
pub fn references(path: &str) -> Result<Vec<String>, Failed> {
    let out = Command::new("nix-store")
        .args(["--query", "--references", path])
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .map_err(|e| format!("cannot run nix-store: {e}"))?;
    ensure(out.status.success(), || {
        format!(
            "nix-store --query --references {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The machines line that pins a build to fleet host `host`.
pub fn builders_line(host: &str, max_jobs: u32) -> String {
    format!("ssh://{host} x86_64-linux - {max_jobs} 1")
}

/// `nix-build <target> <args>` that may only build on `host`, with up to
/// `max_jobs` builds there at once.
pub fn pinned_nix_build(fleet: &Fleet, host: &str, max_jobs: u32, target: &str) -> Command {
    let mut cmd = Command::new("nix-build");
    cmd.arg(target)
        .args(["--max-jobs", "0", "--builders"])
        .arg(builders_line(host, max_jobs))
        .args(["--option", "build-users-group", "", "--no-out-link"])
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .env("NIX_CONFIG", NIX_CONFIG);
    cmd
}

/// A command started here in a process group of its own, its output in a
/// file (and Nix's temporary files in a directory of its own); dropping it
/// ends it and everything it started (`kill`).
pub struct LocalBuild {
    pub label: String,
    child: Child,
    status: Option<ExitStatus>,
    log: PathBuf,
    _dir: TempDir,
}

impl LocalBuild {
    pub fn spawn(label: &str, mut cmd: Command) -> Result<LocalBuild, Failed> {
        let dir = tempfile::Builder::new()
            .prefix("rbtop-triage.")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let log = dir.path().join("output");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().unwrap();
        // Nix's own temporary files (`nix-build-<pid>-0`) stay in here, so a
        // nix-build killed hard leaves nothing in /tmp.
        let child = cmd
            .env("TMPDIR", dir.path())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {label}: {e}"))?;
        Ok(LocalBuild {
            label: label.to_string(),
            child,
            status: None,
            log,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// The processes it started that are still here (itself included).
    pub fn tree(&mut self) -> Vec<Proc> {
        if self.exited().is_some() {
            return Vec::new();
        }
        descendants(self.pid())
            .into_iter()
            .filter_map(Proc::of)
            .filter(Proc::alive)
            .collect()
    }

    /// Its output so far (the last 40 lines).
    pub fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits up to `limit` for it to end by itself.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, Failed> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} still running after {limit:?}; its output:\n{}",
                    self.label,
                    self.log()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends it as Ctrl-C would (SIGINT: Nix stops its builds and removes
    /// its temporary files), then, after up to 3 s, `kill_hard`.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            // SAFETY: kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(self.pid() as i32, libc::SIGINT) };
            let _ = self.wait(Duration::from_secs(3));
        }
        self.kill_hard();
    }

    /// SIGKILLs it and everything it started at once, here (hook and ssh
    /// included): what a crash of this machine would do. Reaps it.
    pub fn kill_hard(&mut self) {
        if self.exited().is_none() {
            kill_tree(self.pid());
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for LocalBuild {
    fn drop(&mut self) {
        self.kill();
    }
}
