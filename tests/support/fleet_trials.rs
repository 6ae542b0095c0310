//! What the fleet test binaries share: their trials run one at a time on one
//! loopback fleet, fail with a message rather than a panic, and look for the
//! processes a run may have left on this machine or on its builders.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::fleet::{Fleet, FleetOptions};

/// One trial: a name and a check against the shared fleet.
pub type Test = fn(&Fleet) -> Result<(), Failed>;

/// Run `tests` on one default fleet, one at a time (they count processes
/// on it), then stop the fleet and exit with the trials' verdict.
pub fn run_on_one_fleet(tests: &[(&'static str, Test)]) -> ! {
    run_on_fleet(FleetOptions::default(), tests)
}

/// [`run_on_one_fleet`] with a fleet made as `options` say.
pub fn run_on_fleet(options: FleetOptions, tests: &[(&'static str, Test)]) -> ! {
    let mut args = Arguments::from_args();
    // One fleet for every trial, stopped however the trials end.
    let fleet = std::sync::Arc::new(Fleet::start(options));
    let trials = tests
        .iter()
        .map(|&(name, test)| {
            let fleet = std::sync::Arc::clone(&fleet);
            Trial::test(name, move || test(&fleet))
        })
        .collect();
    args.test_threads = Some(1);
    let conclusion = libtest_mimic::run(&args, trials);
    // The trials are gone, so this is the last handle: dropping it stops the
    // fleet (exit() would skip destructors).
    drop(fleet);
    conclusion.exit()
}

/// A failed trial saying `message()`, unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// The mount namespaces (`mnt:[4026...]`) of the fleet's hosts: a process
/// on a builder lives in one of them or descends from one that does; a
/// process of this machine (another test's local `nix-store --serve`, say)
/// does not.
pub fn builder_namespaces(fleet: &Fleet) -> Vec<String> {
    fleet
        .hosts
        .iter()
        .filter_map(|h| std::fs::read_to_string(fleet.dir.join(&h.name).join("mntns")).ok())
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect()
}

/// Whether `pid` or one of its ancestors is in one of the mount namespaces
/// `namespaces` (Nix itself may unshare a namespace of its own).
pub fn descends_from(pid: &str, namespaces: &[String]) -> bool {
    let mut pid = pid.to_string();
    for _ in 0..64 {
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .map(|ns| ns.to_string_lossy().into_owned())
            .unwrap_or_default();
        if namespaces.contains(&ns) {
            return true;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`; comm may hold blanks and parentheses.
        match stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
        {
            Some(parent) if parent != "0" && parent != "1" => pid = parent.to_string(),
            _ => return false,
        }
    }
    false
}

/// Processes whose command line contains `needle`; with `within`, only
/// those on a builder (see `descends_from`).
pub fn processes_matching(needle: &str, within: Option<&[String]>) -> Vec<String> {
    processes_whose("cmdline", needle, within)
}

/// Processes whose environment contains `needle` (`seed=S`: Nix gives a
/// builder its derivation's attributes as variables), named by command line;
/// with `within`, only those on a builder.
pub fn processes_with_env(needle: &str, within: Option<&[String]>) -> Vec<String> {
    processes_whose("environ", needle, within)
}

/// Processes whose `/proc/PID/<file>` (NULs read as blanks) contains `needle`.
fn processes_whose(file: &str, needle: &str, within: Option<&[String]>) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if within.is_some_and(|namespaces| !descends_from(&name, namespaces)) {
            continue;
        }
        let Ok(content) = std::fs::read(entry.path().join(file)) else {
            continue;
        };
        if String::from_utf8_lossy(&content)
            .replace('\0', " ")
            .contains(needle)
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Wait up to `limit` for no process to match; returns what still matches.
pub fn settle(needle: &str, within: Option<&[String]>, limit: Duration) -> Vec<String> {
    settle_on(limit, || processes_matching(needle, within))
}

/// Wait up to `limit` for `look` to find nothing; returns what it still finds.
pub fn settle_on(limit: Duration, look: impl Fn() -> Vec<String>) -> Vec<String> {
    let started = Instant::now();
    loop {
        let left = look();
        if left.is_empty() || started.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
