//! Where a build started elsewhere on this machine logs, found from its Nix
//! process (the one behind a slot's build hook), so the dashboard can
//! follow it read-only:
//!
//! - rbtop starts Nix with [`LOG_VAR`] naming the copy of Nix's stderr
//!   (internal-json records as they came) it keeps beside the job's log
//!   while the build runs, so another rbtop (another terminal's `rbtop
//!   build`, another dashboard) reads it from `/proc/PID/environ`. The kernel shows that file only to
//!   the process's own user and root, and the variable goes with the
//!   process: no index file to keep in step, no guess about the other
//!   rbtop's log directory, no stale entry for a reused pid.
//! - Otherwise Nix's `json-log-path` (Nix ≥ 2.30), where set: on its
//!   command line (`--json-log-path P`, `--option json-log-path P`), else
//!   in the nix.conf its environment names (`NIX_CONF_DIR`, `NIX_CONFIG`,
//!   the user files). Records there have no `@nix ` prefix.
//!
//! The file must be a regular file owned by the user the process runs as:
//! a variable in a user's own environment must not make a root dashboard
//! show `/etc/shadow`. The owner is checked again on the opened file
//! ([`open_checked`]), so a swap after the lookup does not get past it.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::bounds::{FileError, LOG_SEARCH, PROC_FILE, read_regular_file};
use crate::nixconf::{NixConf, NixConfEnv};

/// The variable rbtop sets on the Nix processes it starts: the copy of
/// their stderr beside the job's log (`STEM.json` beside `STEM.log`).
pub const LOG_VAR: &str = "RBTOP_JOB_LOG";

/// How the log's lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// rbtop's copy of Nix's stderr, as is (`@nix {…}` records and text).
    Rbtop,
    /// Nix's `json-log-path`: one JSON record a line, without `@nix `.
    NixJson,
}

/// The process whose life the log follows: the log may grow while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writer {
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`: tells a reused pid apart.
    pub start_time: u64,
}

impl Writer {
    /// Whether this exact process still runs.
    pub fn is_alive(&self) -> bool {
        super::process_tree::is_alive(super::process_tree::Process {
            pid: self.pid,
            start_time: self.start_time,
        })
    }
}

/// A log found for a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundLog {
    pub path: PathBuf,
    pub format: LogFormat,
    /// The uid that must own the file (the process's).
    pub owner: u32,
    pub writer: Writer,
}

/// What is read of a process to find its log; built from `/proc` by
/// [`find`], by hand in tests.
#[derive(Clone, Debug)]
pub struct ProcessView {
    pub uid: u32,
    /// Its environment, or why it could not be read.
    pub environ: Result<HashMap<String, String>, String>,
    pub argv: Vec<String>,
    /// Its working directory, for a relative `json-log-path`.
    pub cwd: Option<PathBuf>,
}

/// The log of the Nix process `pid`, or why there is none to follow (a
/// sentence for the operator, naming the process).
pub fn find(pid: u32) -> Result<FoundLog, String> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let gone = || format!("process {pid} has ended");
    let status = std::fs::read_to_string(dir.join("status")).map_err(|_| gone())?;
    let uid = real_uid(&status).ok_or_else(gone)?;
    let start_time = super::process_tree::process(pid)
        .ok_or_else(gone)?
        .start_time;
    let argv = read_proc(&dir.join("cmdline"))
        .map(|bytes| split_nul(&bytes))
        .unwrap_or_default();
    let environ = read_proc(&dir.join("environ"))
        .map(|bytes| {
            split_nul(&bytes)
                .into_iter()
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
                .collect()
        })
        .map_err(|e| match e {
            FileError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                if uid == 0 {
                    "cannot read its environment: only root can (a nix-daemon worker's, say)"
                        .to_string()
                } else {
                    format!(
                        "cannot read its environment: only {} and root can",
                        crate::slots::behind::user_of(uid)
                    )
                }
            }
            other => other.to_string(),
        });
    let cwd = std::fs::read_link(dir.join("cwd")).ok();
    let view = ProcessView {
        uid,
        environ,
        argv,
        cwd,
    };
    let (path, format) = locate(&view, pid)?;
    check_file(&path, uid)?;
    Ok(FoundLog {
        path,
        format,
        owner: uid,
        writer: Writer { pid, start_time },
    })
}

/// Where `view`'s process logs: rbtop's variable first, then Nix's
/// `json-log-path`; else why it cannot be followed.
pub fn locate(view: &ProcessView, pid: u32) -> Result<(PathBuf, LogFormat), String> {
    let env = match &view.environ {
        Ok(env) => env,
        Err(why) => return Err(format!("no log found for process {pid}: {why}")),
    };
    if let Some(path) = env.get(LOG_VAR).filter(|p| !p.is_empty()) {
        return Ok((PathBuf::from(path), LogFormat::Rbtop));
    }
    let from_conf = || {
        let conf = NixConf::load(&NixConfEnv::from_vars(|name| env.get(name).cloned()));
        conf.get("json-log-path").map(|s| s.value.clone())
    };
    match json_log_path_arg(&view.argv)
        .or_else(from_conf)
        .filter(|p| !p.is_empty())
    {
        Some(path) => {
            let path = PathBuf::from(path);
            let path = match &view.cwd {
                Some(cwd) if path.is_relative() => cwd.join(path),
                _ => path,
            };
            Ok((path, LogFormat::NixJson))
        }
        None => Err(format!(
            "no log to follow for process {pid}: it was not started by rbtop ({LOG_VAR} \
             is not set) and Nix's json-log-path is not set for it; its log is on the \
             terminal that started it (`rbtop build` there makes it followable here)"
        )),
    }
}

/// `--json-log-path P` or `--option json-log-path P` (the last one wins, as
/// in Nix).
fn json_log_path_arg(argv: &[String]) -> Option<String> {
    let mut found = None;
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--json-log-path" => found = words.next().cloned().or(found),
            "--option" => {
                let name = words.next();
                let value = words.next();
                if name.is_some_and(|n| n == "json-log-path") {
                    found = value.cloned().or(found);
                }
            }
            _ => {}
        }
    }
    found
}

/// The log must be a regular file owned by `owner`.
fn check_file(path: &Path, owner: u32) -> Result<(), String> {
    open_checked(path, owner).map(drop)
}

/// Open the log for reading, refusing anything but a regular file owned by
/// `owner` (checked on the opened file). Opened without blocking, so a FIFO
/// cannot hang the dashboard.
pub fn open_checked(path: &Path, owner: u32) -> Result<std::fs::File, String> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Nor can a terminal device become the dashboard's.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read the log {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the log {shown}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the log {shown} is not a regular file (a socket or pipe: rbtop follows files only)"
        ));
    }
    if meta.uid() != owner {
        return Err(format!(
            "the log {shown} is owned by {}, not by {} who runs the build: not opened",
            crate::slots::behind::user_of(meta.uid()),
            crate::slots::behind::user_of(owner)
        ));
    }
    Ok(file)
}

/// Whether the log at `path` (owned by `owner`) names `needle` in its
/// first [`LOG_SEARCH`] bytes: which of several logs builds a derivation.
pub fn mentions(path: &Path, owner: u32, needle: &str) -> bool {
    use std::io::Read;
    let Ok(file) = open_checked(path, owner) else {
        return false;
    };
    let mut file = file.take(LOG_SEARCH.limit as u64);
    let mut chunk = vec![0u8; 4 << 20];
    // The end of the previous chunk, for a needle split across two.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        carry.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&carry).contains(needle) {
            return true;
        }
        let keep = needle.len().min(carry.len());
        carry.drain(..carry.len() - keep);
    }
}

fn read_proc(path: &Path) -> Result<Vec<u8>, FileError> {
    read_regular_file(path, PROC_FILE)
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// The real uid on `/proc/PID/status`'s `Uid:` line.
pub(crate) fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(env: &[(&str, &str)], argv: &[&str]) -> ProcessView {
        ProcessView {
            uid: 1000,
            environ: Ok(env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: Some(PathBuf::from("/home/alice/src")),
        }
    }

    #[test]
    fn rbtop_s_variable_comes_first() {
        let found = locate(
            &view(
                &[
                    (LOG_VAR, "/s/rbtop/jobs/1.log"),
                    ("NIX_CONFIG", "json-log-path = /x"),
                ],
                &["nix", "build", "--json-log-path", "/y"],
            ),
            7,
        );
        assert_eq!(
            found,
            Ok((PathBuf::from("/s/rbtop/jobs/1.log"), LogFormat::Rbtop))
        );
    }

    #[test]
    fn json_log_path_from_argv_then_nix_config() {
        let empty_conf = [
            ("NIX_CONF_DIR", "/nonexistent"),
            ("NIX_USER_CONF_FILES", ""),
        ];
        let with = |extra: &[(&'static str, &'static str)], argv: &[&str]| {
            let env: Vec<(&str, &str)> = empty_conf.iter().chain(extra).copied().collect();
            locate(&view(&env, argv), 7)
        };
        assert_eq!(
            with(&[], &["nix", "build", "--json-log-path", "/a.json", "-L"]),
            Ok((PathBuf::from("/a.json"), LogFormat::NixJson))
        );
        assert_eq!(
            with(&[], &["nix-build", "--option", "json-log-path", "rel.json"]),
            Ok((
                PathBuf::from("/home/alice/src/rel.json"),
                LogFormat::NixJson
            ))
        );
        // `--option` of another setting takes its two words along.
        assert!(
            with(&[], &["nix", "--option", "cores", "--json-log-path"])
                .unwrap_err()
                .contains("json-log-path is not set")
        );
        assert_eq!(
            with(
                &[("NIX_CONFIG", "json-log-path = /c.json")],
                &["nix", "build"]
            ),
            Ok((PathBuf::from("/c.json"), LogFormat::NixJson))
        );
    }

    #[test]
    fn json_log_path_from_the_process_s_nix_conf_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nix.conf"), "json-log-path = /d.json\n").unwrap();
        let conf_dir = dir.path().to_str().unwrap();
        assert_eq!(
            locate(
                &view(
                    &[("NIX_CONF_DIR", conf_dir), ("NIX_USER_CONF_FILES", "")],
                    &["nix-daemon"]
                ),
                7
            ),
            Ok((PathBuf::from("/d.json"), LogFormat::NixJson))
        );
    }

    #[test]
    fn nothing_to_follow_says_why() {
        let none = view(
            &[
                ("NIX_CONF_DIR", "/nonexistent"),
                ("NIX_USER_CONF_FILES", ""),
            ],
            &["nix-build", "hello.nix"],
        );
        let why = locate(&none, 4242).unwrap_err();
        assert!(why.contains("process 4242"), "{why}");
        assert!(why.contains("not started by rbtop"), "{why}");
        let mut hidden = none;
        hidden.environ = Err("cannot read its environment: only alice and root can".into());
        assert_eq!(
            locate(&hidden, 9).unwrap_err(),
            "no log found for process 9: cannot read its environment: only alice and root can"
        );
    }

    fn my_uid() -> u32 {
        real_uid(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap()
    }

    #[test]
    fn only_a_regular_file_of_the_build_s_user_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("1.log");
        std::fs::write(&log, "@nix {}\n").unwrap();
        let me = my_uid();
        assert!(open_checked(&log, me).is_ok());
        let other = open_checked(&log, me + 1).unwrap_err();
        assert!(other.contains("not opened"), "{other}");
        assert!(
            other.contains(&crate::slots::behind::user_of(me)),
            "{other}"
        );
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let why = open_checked(&fifo, me).unwrap_err();
        assert!(why.contains("not a regular file"), "{why}");
        let missing = open_checked(&dir.path().join("gone.log"), me).unwrap_err();
        assert!(missing.contains("cannot read the log"), "{missing}");
    }

    #[test]
    fn a_log_names_a_derivation_even_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let drv = "/nix/store/00000000000000000000000000000000-a.drv";
        // The name straddles the 4 MiB read boundary.
        let mut text = "x".repeat((4 << 20) - 10);
        text.push_str(drv);
        std::fs::write(&log, &text).unwrap();
        assert!(mentions(&log, my_uid(), drv));
        assert!(!mentions(&log, my_uid(), "/nix/store/1111-b.drv"));
        assert!(!mentions(&log, my_uid() + 1, drv), "not the user's file");
    }

    /// A real child started with the variable: found from `/proc`, with its
    /// start time; a process without it says why.
    #[test]
    fn a_real_process_s_log_is_found_from_proc() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("job.log");
        std::fs::write(&log, "# rbtop job #1\n").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(LOG_VAR, &log)
            .env("NIX_CONF_DIR", "/nonexistent")
            .env("NIX_USER_CONF_FILES", "")
            .spawn()
            .unwrap();
        // Until it has exec'd, a child's /proc shows its parent's environment.
        let execed = |pid: u32| {
            let started = std::time::Instant::now();
            while !std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"sleep\0"))
            {
                assert!(started.elapsed().as_secs() < 10, "sleep did not start");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        execed(child.id());
        let found = find(child.id());
        let mut plain = std::process::Command::new("sleep")
            .arg("30")
            .env_remove(LOG_VAR)
            .env("NIX_CONF_DIR", "/nonexistent")
            .env("NIX_USER_CONF_FILES", "")
            .env_remove("NIX_CONFIG")
            .spawn()
            .unwrap();
        execed(plain.id());
        let not_found = find(plain.id());
        for c in [&mut child, &mut plain] {
            let _ = c.kill();
            let _ = c.wait();
        }
        let found = found.unwrap();
        assert_eq!(found.path, log);
        assert_eq!(found.format, LogFormat::Rbtop);
        assert_eq!(found.owner, my_uid());
        assert_eq!(found.writer.pid, child.id());
        assert!(!found.writer.is_alive(), "killed and reaped");
        assert!(not_found.unwrap_err().contains("not started by rbtop"));
        assert!(find(u32::MAX).unwrap_err().contains("has ended"));
    }
}
