//! A build hook holding a builder's upload lock for as long as a test wants.

use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use libtest_mimic::Failed;
use tempfile::TempDir;

use super::{
    LocalBuild, OnHost, Proc, START_LIMIT, cmdline, flock_holders, flocks, fresh_seed, hooks_of,
    instantiate, pinned_nix_build, references, sweep, upload_lock_file,
};
use crate::fleet::Fleet;
use crate::fleet_trials::ensure;

/// A build hook holding `ssh://<host>`'s upload lock, for as long as the test
/// wants: the build's one input (a small file, fresh per seed) is being
/// copied to the host, whose `nix-store --serve --write` waits for that
/// path's lock (`/nix/store/<input>.lock` in the host's store), which this
/// test holds, as another client uploading the same path would. Nix reads
/// the path's contents only once it has the lock, so the hook stays inside
/// the copy, upload lock held, until `release`. No timing is involved.
pub struct UploadHold {
    pub host: String,
    pub seed: String,
    /// `rbtop-upload-<seed>`.
    pub name: String,
    pub drv: String,
    /// The input being uploaded (`rbtop-upload-input-<seed>`).
    pub input: String,
    /// The local hook holding the upload lock (and one slot).
    pub hook: Proc,
    /// The host's `nix-store --serve --write`, blocked on the path lock.
    pub receiver: Proc,
    pub on: OnHost,
    pub started: Instant,
    pub started_at: SystemTime,
    pub build: LocalBuild,
    path_lock: Option<File>,
    path_lock_file: PathBuf,
    _dir: TempDir,
}

const UPLOAD_NIX: &str = r#"{ seed }:
builtins.derivation {
  name = "rbtop-upload-${seed}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  input = builtins.path { path = ./input; name = "rbtop-upload-input-${seed}"; };
  args = [ "-c" "/bin/cat $input > $out" ];
}
"#;

/// Starts a build pinned to `host` whose input must be copied there, with
/// that path's lock on the host held by this test, and waits until the
/// local hook holds the upload lock and the host's receiver waits.
pub fn hold_upload_lock(fleet: &Fleet, host: &str) -> Result<UploadHold, Failed> {
    let seed = fresh_seed("upload");
    let on = OnHost::of(fleet, host);
    let dir = tempfile::Builder::new()
        .prefix("rbtop-upload.")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    fs::write(dir.path().join("input"), format!("uploaded for {seed}\n")).unwrap();
    fs::write(dir.path().join("upload.nix"), UPLOAD_NIX).unwrap();
    let drv = instantiate(&dir.path().join("upload.nix"), &["--argstr", "seed", &seed])?;
    let input_name = format!("-rbtop-upload-input-{seed}");
    let input = references(&drv)?
        .into_iter()
        .find(|r| r.ends_with(&input_name))
        .ok_or_else(|| format!("{drv} has no input ending {input_name}"))?;
    let base = input.trim_start_matches("/nix/store/");
    // The host's /nix/store/<input>.lock, seen from here.
    let path_lock_file = fleet
        .dir
        .join(host)
        .join("nix/store")
        .join(format!("{base}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path_lock_file)
        .map_err(|e| format!("{}: {e}", path_lock_file.display()))?;
    // flock(LOCK_EX), as Nix's PathLocks; the descriptor is close-on-exec,
    // so no child inherits the lock.
    lock.lock()
        .map_err(|e| format!("flock {}: {e}", path_lock_file.display()))?;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let build = LocalBuild::spawn(
        &format!("nix-build of {seed} on {host}"),
        pinned_nix_build(fleet, host, 1, &drv),
    )?;
    let mut hold = UploadHold {
        host: host.to_string(),
        name: format!("rbtop-upload-{seed}"),
        seed,
        drv,
        input,
        hook: Proc {
            pid: 0,
            start_ticks: 0,
        },
        receiver: Proc {
            pid: 0,
            start_ticks: 0,
        },
        on,
        started,
        started_at,
        build,
        path_lock: Some(lock),
        path_lock_file,
        _dir: dir,
    };
    let upload_lock = upload_lock_file(host);
    let deadline = Instant::now() + START_LIMIT;
    let (hook, receiver) = loop {
        let hooks = hooks_of(&mut hold.build);
        let holder = flock_holders(&upload_lock)
            .into_iter()
            .find_map(|pid| hooks.iter().copied().find(|h| h.pid == pid));
        let waiter = flocks(&hold.path_lock_file)
            .into_iter()
            .filter(|l| l.waiting)
            .find(|l| hold.on.contains(l.pid))
            .and_then(|l| Proc::of(l.pid));
        if let (Some(hook), Some(receiver)) = (holder, waiter) {
            break (hook, receiver);
        }
        if let Some(status) = hold.build.exited() {
            return Err(format!(
                "the build ended ({status}) before its hook held {}; its output:\n{}",
                upload_lock.display(),
                hold.build.log()
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "within {START_LIMIT:?}, no hook of the build held {} ({:?}) with {}'s receiver \
                 waiting for {} ({:?}); the build says:\n{}",
                upload_lock.display(),
                flocks(&upload_lock),
                host,
                hold.path_lock_file.display(),
                flocks(&hold.path_lock_file),
                hold.build.log()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    hold.hook = hook;
    hold.receiver = receiver;
    ensure(cmdline(receiver.pid) == "nix-store --serve --write", || {
        format!("the waiter on the input's lock: {}", receiver.describe())
    })?;
    // Held, and it stays held: the copy cannot go on.
    std::thread::sleep(Duration::from_millis(500));
    ensure(flock_holders(&upload_lock) == vec![hook.pid], || {
        format!(
            "{} should still be held by the hook {} alone: {:?}",
            upload_lock.display(),
            hook.describe(),
            flocks(&upload_lock)
        )
    })?;
    Ok(hold)
}

impl UploadHold {
    /// Lets the copy go on: the build then finishes (exit 0, within
    /// START_LIMIT) and the upload lock is free.
    pub fn release(&mut self) -> Result<(), Failed> {
        self.path_lock = None;
        let status = self.build.wait(START_LIMIT)?;
        ensure(status.success(), || {
            format!(
                "the build should succeed once the copy goes on: {status}\n{}",
                self.build.log()
            )
        })?;
        let upload_lock = upload_lock_file(&self.host);
        let held = flocks(&upload_lock);
        ensure(held.is_empty(), || {
            format!("{} still locked: {held:?}", upload_lock.display())
        })
    }
}

impl Drop for UploadHold {
    fn drop(&mut self) {
        self.path_lock = None;
        self.build.kill();
        let _ = sweep(&self.seed, &self.on);
        let _ = fs::remove_file(&self.path_lock_file);
    }
}
