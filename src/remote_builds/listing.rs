//! The builder's process table, as the facts loop's `builds` section
//! prints it ([`crate::probe::facts::FACTS_SCRIPT`]).
//!
//! The section is what one `grep` gathers from `/proc` (Linux), so listing a
//! host's builds costs it one process per refresh:
//!
//! ```text
//! builds-begin
//! hz=100
//! uptime=12345.67
//! users= 0:root 30001:nixbld1
//! processes
//! /proc/7/stat:7 (nix-store) S 1 7 …\0/proc/7/status:Uid:\t0\0/proc/7/cmdline:--serve\0…
//! build-dirs
//! drwx------ 2 30001 30000 4096 Nov 21 10:00 /tmp/nix-build-hello.drv-0
//! builds-end
//! ```
//!
//! Only what triage needs is asked of each process: the first 22 fields of
//! `stat`, the real uid, the few environment variables that name a build or
//! its SSH client (never the whole environment: it may hold secrets), and the
//! command-line words that tell Nix's serving processes apart. A process
//! whose files are not readable (another user's, without root) simply lacks
//! them. Written by hand: the format is rbtop's own.

use std::collections::HashMap;

/// The line that opens the section.
pub const BEGIN: &str = "builds-begin";
/// The line that closes it.
pub const END: &str = "builds-end";

/// One process on the builder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteProcess {
    pub pid: u32,
    /// `stat`'s command name (at most 15 bytes).
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    /// utime + stime + cutime + cstime, in clock ticks: the process's own
    /// CPU and that of its children it has waited for.
    pub cpu_ticks: u64,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    /// Real uid, when `status` was readable.
    pub uid: Option<u32>,
    /// `--serve` or `--stdio` among its words.
    pub serve_flag: Option<ServeFlag>,
    /// Its words that are plain numbers (a daemon worker's argv[1] is its
    /// client's pid).
    pub numbers: Vec<u32>,
    /// `SSH_CONNECTION`, `name`, `out`, `NIX_BUILD_TOP`, when readable.
    pub env: HashMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeFlag {
    /// `nix-store --serve`: an `ssh://` client's store.
    Serve,
    /// `nix-daemon --stdio`: an `ssh-ng://` client's store.
    Stdio,
}

/// A Nix build directory found on the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildDir {
    pub owner_uid: u32,
    pub path: String,
}

/// Everything one `builds` section says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessListing {
    /// Clock ticks per second (`getconf CLK_TCK`).
    pub hz: u64,
    /// Seconds since boot when the listing was taken.
    pub uptime: f64,
    pub users: HashMap<u32, String>,
    pub processes: Vec<RemoteProcess>,
    pub build_dirs: Vec<BuildDir>,
    /// Processes that see another machine's store: their builds are that
    /// machine's (see [`crate::probe::facts::REQUEST_SAME_STORE`]).
    pub other_store: std::collections::HashSet<u32>,
}

impl ProcessListing {
    /// Read the section's lines (between [`BEGIN`] and [`END`], both
    /// excluded). A host without `/proc` says `unsupported=<why>`.
    pub fn parse(section: &str) -> Result<ProcessListing, String> {
        let mut listing = ProcessListing {
            hz: 100,
            ..ProcessListing::default()
        };
        let mut lines = section.lines();
        let mut by_pid: HashMap<u32, RemoteProcess> = HashMap::new();
        while let Some(line) = lines.next() {
            if let Some(why) = line.strip_prefix("unsupported=") {
                return Err(why.to_string());
            } else if let Some(hz) = line.strip_prefix("hz=") {
                listing.hz = hz.trim().parse().ok().filter(|&hz| hz > 0).unwrap_or(100);
            } else if let Some(uptime) = line.strip_prefix("uptime=") {
                listing.uptime = uptime.trim().parse().unwrap_or(0.0);
            } else if let Some(users) = line.strip_prefix("users=") {
                listing.users = parse_users(users);
            } else if line == "processes" {
                // One line of NUL-ended records, maybe empty.
                for record in lines.next().unwrap_or("").split('\0') {
                    apply_record(&mut by_pid, record);
                }
            } else if line == "build-dirs" {
                listing
                    .build_dirs
                    .extend(lines.by_ref().filter_map(parse_ls_line));
            }
        }
        if listing.uptime <= 0.0 {
            return Err("the builder did not say its uptime".to_string());
        }
        let mut processes: Vec<RemoteProcess> = by_pid
            .into_values()
            .filter(|p| p.state != '\0') // a stat line was read
            .collect();
        processes.sort_by_key(|p| p.pid);
        listing.processes = processes;
        Ok(listing)
    }

    /// Seconds the process has been running.
    pub fn elapsed_s(&self, process: &RemoteProcess) -> u64 {
        let started = process.start_ticks as f64 / self.hz as f64;
        (self.uptime - started).max(0.0) as u64
    }

    /// The uid's name, or the uid itself.
    pub fn user_name(&self, uid: Option<u32>) -> String {
        match uid {
            Some(uid) => self
                .users
                .get(&uid)
                .cloned()
                .unwrap_or_else(|| uid.to_string()),
            None => "?".to_string(),
        }
    }
}

/// ` 0:root 30001:nixbld1` (the first name wins for a shared uid).
fn parse_users(text: &str) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for pair in text.split_whitespace() {
        if let Some((uid, name)) = pair.split_once(':')
            && let Ok(uid) = uid.parse()
        {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

/// `/proc/<pid>/<file>:<match>`.
fn apply_record(by_pid: &mut HashMap<u32, RemoteProcess>, record: &str) {
    let Some(rest) = record.strip_prefix("/proc/") else {
        return;
    };
    let Some((pid, rest)) = rest.split_once('/') else {
        return;
    };
    let Ok(pid) = pid.parse::<u32>() else { return };
    let Some((file, value)) = rest.split_once(':') else {
        return;
    };
    let process = by_pid.entry(pid).or_insert_with(|| RemoteProcess {
        pid,
        state: '\0',
        ..RemoteProcess::default()
    });
    match file {
        "stat" => apply_stat(process, value),
        "status" => {
            process.uid = value
                .strip_prefix("Uid:")
                .and_then(|uid| uid.trim().parse().ok());
        }
        "cmdline" => match value {
            "--serve" => process.serve_flag = Some(ServeFlag::Serve),
            "--stdio" => process.serve_flag = Some(ServeFlag::Stdio),
            number => process.numbers.extend(number.parse::<u32>().ok()),
        },
        "environ" => {
            if let Some((key, value)) = value.split_once('=') {
                process.env.insert(key.to_string(), value.to_string());
            }
        }
        _ => {}
    }
}

/// `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
/// cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime`
fn apply_stat(process: &mut RemoteProcess, stat: &str) {
    let Some(open) = stat.find('(') else { return };
    let Some(close) = stat.rfind(')') else { return };
    if close < open {
        return;
    }
    let Some(fields) = crate::proc_stat::fields_after_name(stat) else {
        return;
    };
    let number = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    let (Some(state), Some(ppid), Some(pgid), Some(start)) = (
        fields.first().and_then(|s| s.chars().next()),
        number(1),
        number(2),
        number(19),
    ) else {
        return;
    };
    process.comm = stat[open + 1..close].to_string();
    process.state = state;
    process.ppid = ppid as u32;
    process.pgid = pgid as u32;
    process.start_ticks = start;
    process.cpu_ticks = (11..=14).filter_map(number).sum();
}

/// `drwx------ 2 30001 30000 4096 Nov 21 10:00 /tmp/nix-build-x.drv-0`: the
/// owner is the third word, the path starts at the first ` /`.
fn parse_ls_line(line: &str) -> Option<BuildDir> {
    let owner_uid = line.split_whitespace().nth(2)?.parse().ok()?;
    let path = &line[line.find(" /")? + 1..];
    Some(BuildDir {
        owner_uid,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real section, recorded on a 2.8 builder (pids and numbers kept):
    /// the serving `nix-store --serve --write` (5100) under sshd (5090), its
    /// builder (5120) and that builder's child (5121).
    pub(crate) const RECORDED: &str = "hz=100\nuptime=1000.50\nusers= 0:root 30001:nixbld1\nprocesses\n\
/proc/5090/stat:5090 (sshd) S 700 5090 5090 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 90000\0\
/proc/5090/status:Uid:\t0\0\
/proc/5100/stat:5100 (nix-store) S 5090 5100 5100 0 -1 4194560 10 0 0 0 30 5 0 0 20 0 1 0 90010\0\
/proc/5100/status:Uid:\t0\0\
/proc/5100/environ:SSH_CONNECTION=127.0.0.1 40022 127.0.0.11 2222\0\
/proc/5100/cmdline:--serve\0\
/proc/5120/stat:5120 (bash) S 5100 5120 5120 0 -1 4194560 10 0 0 0 7 3 40 2 20 0 1 0 95000\0\
/proc/5120/status:Uid:\t30001\0\
/proc/5120/environ:name=hello-2.12\0\
/proc/5120/environ:out=/nix/store/aaaa-hello-2.12\0\
/proc/5120/environ:NIX_BUILD_TOP=/tmp/nix-build-hello-2.12.drv-0\0\
/proc/5121/stat:5121 (cc1 (weird) x) R 5120 5120 5120 0 -1 4194560 10 0 0 0 300 20 0 0 20 0 1 0 99000\0\
/proc/5121/status:Uid:\t30001\0\
/proc/5121/cmdline:5\0\
/proc/9/cmdline:60\0\n\
build-dirs\n\
drwx------ 2 30001 30000 4096 Nov 21 10:00 /tmp/nix-build-hello-2.12.drv-0\n\
drwx------ 2 30002 30000 4096 Nov 21  2025 /nix/var/nix/builds/nix-5100-0\n";

    #[test]
    fn a_recorded_section_is_read_whole() {
        let listing = ProcessListing::parse(RECORDED).unwrap();
        assert_eq!(listing.hz, 100);
        let pids: Vec<u32> = listing.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [5090, 5100, 5120, 5121], "pid 9 had no stat line");
        let serving = &listing.processes[1];
        assert_eq!(serving.comm, "nix-store");
        assert_eq!((serving.ppid, serving.pgid), (5090, 5100));
        assert_eq!(serving.serve_flag, Some(ServeFlag::Serve));
        assert_eq!(
            serving.env["SSH_CONNECTION"],
            "127.0.0.1 40022 127.0.0.11 2222"
        );
        let builder = &listing.processes[2];
        assert_eq!(builder.cpu_ticks, 7 + 3 + 40 + 2);
        assert_eq!(builder.uid, Some(30001));
        assert_eq!(listing.user_name(builder.uid), "nixbld1");
        assert_eq!(
            listing.elapsed_s(builder),
            50,
            "1000.5 s up, started at 950 s"
        );
        assert_eq!(builder.env["name"], "hello-2.12");
        let child = &listing.processes[3];
        assert_eq!(child.comm, "cc1 (weird) x");
        assert_eq!((child.state, child.numbers.as_slice()), ('R', &[5][..]));
        assert_eq!(
            listing.build_dirs,
            [
                BuildDir {
                    owner_uid: 30001,
                    path: "/tmp/nix-build-hello-2.12.drv-0".into()
                },
                BuildDir {
                    owner_uid: 30002,
                    path: "/nix/var/nix/builds/nix-5100-0".into()
                }
            ]
        );
    }

    #[test]
    fn unsupported_hosts_and_missing_uptime_are_errors() {
        assert_eq!(
            ProcessListing::parse("unsupported=this host has no /proc\n").unwrap_err(),
            "this host has no /proc"
        );
        assert!(ProcessListing::parse("hz=100\nprocesses\n\n").is_err());
    }

    #[test]
    fn an_idle_host_lists_no_process_and_unknown_uids_show_as_numbers() {
        let listing = ProcessListing::parse("hz=0\nuptime=5\nusers=\nprocesses\n\n").unwrap();
        assert_eq!(listing.hz, 100, "a zero hz is not believed");
        assert!(listing.processes.is_empty());
        assert_eq!(listing.user_name(Some(42)), "42");
        assert_eq!(listing.user_name(None), "?");
    }
}
