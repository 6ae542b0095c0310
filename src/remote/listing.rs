//! The builder's process table, as the facts loop prints it
//! ([`crate::remote::script::FACTS`]), in two rounds:
//!
//! 1. with every report, the `builds` section: each process's first 22
//!    `stat` fields, from one `grep` of `/proc/*/stat`;
//! 2. only when that shows builds, a `detail` request for the few processes
//!    that matter (builders and Nix's processes): their real uid, the
//!    command-line words that tell Nix's serving processes apart, four
//!    environment variables (never a whole environment: it may hold
//!    secrets), whether each sees the host's own store, and the build
//!    directories.
//!
//! ```text
//! builds-begin
//! hz=100
//! uptime=12345.67
//! processes
//! /proc/7/stat:7 (nix-store) S 1 7 …\0/proc/9/stat:9 (bash) S 7 9 …\0
//! records-end NONCE
//! ```
//!
//! ```text
//! users= 0:root 30001:nixbld1
//! records
//! /proc/9/status:Uid:\t30001\0/proc/7/cmdline:--serve\0/proc/9/environ:name=hello\0
//! records-end NONCE
//! same 7
//! build-dirs
//! drwx------ 2 30001 30000 4096 Nov 21 10:00 /tmp/nix-build-hello.drv-0
//! records-end NONCE
//! ```
//!
//! Process names, environment values and file names are anyone's to
//! choose, so blocks of them end at `records-end NONCE`, with a nonce rbtop
//! made up for the request, and records are split on NUL only: no process
//! can end a block early or add a line. A process whose files are not
//! readable (another user's, without root) simply lacks them. Written by
//! hand: the format is rbtop's own.

use std::collections::HashMap;

/// Nix's programs: a builder is a child of one of these, and never one itself.
const NIX_PROGRAMS: &[&str] = &[
    "nix",
    "nix-store",
    "nix-daemon",
    "nix-build",
    "nix-shell",
    "nix-env",
    "build-remote",
];
/// The line that opens the section.
pub(crate) const BEGIN: &str = "builds-begin";

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

impl RemoteProcess {
    /// One of Nix's programs.
    pub fn is_nix(&self) -> bool {
        NIX_PROGRAMS.contains(&self.comm.as_str())
    }

    /// A build: a session leader whose parent is a Nix program, and no Nix
    /// program or hook's ssh itself.
    pub fn is_builder_under(&self, parent: &RemoteProcess) -> bool {
        self.pgid == self.pid
            && self.state != 'Z'
            && parent.is_nix()
            && !self.is_nix()
            && self.comm != "ssh"
    }
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

/// Why a `builds` section holds no listing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The host said why it cannot list (`unsupported=<why>`: no Linux `/proc`).
    #[error("{0}")]
    Unsupported(String),
    #[error("the builder's answer has no process list")]
    NoProcessList,
    #[error("the builder did not say its uptime")]
    NoUptime,
    #[error("the process list was cut short")]
    CutShort,
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
    /// machine's (the facts loop's `detail` request asks).
    pub other_store: std::collections::HashSet<u32>,
}

impl ProcessListing {
    /// Read the `builds` section (after `BEGIN`). A host without `/proc`
    /// says `unsupported=<why>`.
    pub fn parse(section: &str, nonce: &str) -> Result<ProcessListing, ListingError> {
        let mut listing = ProcessListing {
            hz: 100,
            ..ProcessListing::default()
        };
        let Some((header, records)) = section.split_once("processes\n") else {
            return Err(header_error(section));
        };
        for line in header.lines() {
            if let Some(why) = line.strip_prefix("unsupported=") {
                return Err(ListingError::Unsupported(why.to_string()));
            } else if let Some(hz) = line.strip_prefix("hz=") {
                listing.hz = hz.trim().parse().ok().filter(|&hz| hz > 0).unwrap_or(100);
            } else if let Some(uptime) = line.strip_prefix("uptime=") {
                listing.uptime = uptime.trim().parse().unwrap_or(0.0);
            }
        }
        if listing.uptime <= 0.0 {
            return Err(ListingError::NoUptime);
        }
        let (records, _) = block(records, nonce).ok_or(ListingError::CutShort)?;
        // Only stat records here: straight into a list, sorted by pid.
        let mut processes: Vec<RemoteProcess> = records
            .split('\0')
            .filter_map(|record| {
                let (pid, stat) = record.strip_prefix("/proc/")?.split_once("/stat:")?;
                let mut process = RemoteProcess {
                    pid: pid.parse().ok()?,
                    ..RemoteProcess::default()
                };
                apply_stat(&mut process, stat);
                (process.state != '\0').then_some(process)
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        processes.dedup_by_key(|p| p.pid);
        listing.processes = processes;
        Ok(listing)
    }

    /// Add the answer to a `detail` request: records, `same`/`other` lines
    /// and build directories.
    pub fn apply_detail(&mut self, answer: &str, nonce: &str) {
        // The `records` line, not a user name that happens to end so.
        let (header, rest) = match answer.strip_prefix("records\n") {
            Some(rest) => ("", rest),
            None => answer.split_once("\nrecords\n").unwrap_or(("", answer)),
        };
        if let Some(users) = header.lines().find_map(|l| l.strip_prefix("users=")) {
            self.users = parse_users(users);
        }
        let Some((records, rest)) = block(rest, nonce) else {
            return;
        };
        let mut by_pid: HashMap<u32, RemoteProcess> = std::mem::take(&mut self.processes)
            .into_iter()
            .map(|p| (p.pid, p))
            .collect();
        for record in records.split('\0') {
            // Details of a process that was not listed are of no use.
            if let Some(pid) = record_pid(record)
                && by_pid.contains_key(&pid)
            {
                apply_record(&mut by_pid, record);
            }
        }
        let mut processes: Vec<RemoteProcess> = by_pid.into_values().collect();
        processes.sort_by_key(|p| p.pid);
        self.processes = processes;
        let (verdicts, dirs) = rest.split_once("build-dirs\n").unwrap_or((rest, ""));
        self.other_store = verdicts
            .lines()
            .filter_map(|line| line.strip_prefix("other "))
            .filter_map(|pid| pid.trim().parse().ok())
            .collect();
        if let Some((dirs, _)) = block(dirs, nonce) {
            self.build_dirs = dirs.lines().filter_map(parse_ls_line).collect();
        }
    }

    /// The Nix processes that started a build, each once: whether they see
    /// this host's store is asked before the builds are trusted to be its own.
    pub fn building_parents(&self) -> Vec<u32> {
        let mut parents: Vec<u32> = self
            .processes
            .iter()
            .filter_map(|p| {
                self.process(p.ppid)
                    .filter(|parent| p.is_builder_under(parent))
            })
            .map(|parent| parent.pid)
            .collect();
        parents.sort_unstable();
        parents.dedup();
        parents
    }

    /// The processes a `detail` request should ask about: every builder
    /// and every Nix process (the serving ones, daemon workers and their
    /// clients among them).
    pub fn detail_pids(&self) -> Vec<u32> {
        let parents = self.building_parents();
        if parents.is_empty() {
            return Vec::new();
        }
        let mut pids: Vec<u32> = self
            .processes
            .iter()
            .filter(|p| p.is_nix() || parents.contains(&p.ppid))
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The process `pid`, if listed.
    pub fn process(&self, pid: u32) -> Option<&RemoteProcess> {
        let at = self.processes.binary_search_by_key(&pid, |p| p.pid).ok()?;
        self.processes.get(at)
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

/// The text before `\nrecords-end NONCE\n` (or at the very start), and
/// what follows it; `None` when the block never ended.
fn block<'t>(text: &'t str, nonce: &str) -> Option<(&'t str, &'t str)> {
    let end = format!("records-end {nonce}\n");
    if let Some(rest) = text.strip_prefix(&end) {
        return Some(("", rest));
    }
    let (inside, rest) = text.split_once(&format!("\n{end}"))?;
    Some((inside, rest))
}

fn header_error(section: &str) -> ListingError {
    match section.lines().find_map(|l| l.strip_prefix("unsupported=")) {
        Some(why) => ListingError::Unsupported(why.to_string()),
        None => ListingError::NoProcessList,
    }
}

fn record_pid(record: &str) -> Option<u32> {
    record
        .strip_prefix("/proc/")?
        .split('/')
        .next()?
        .parse()
        .ok()
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
    // Fields after the name, without collecting them: this runs for every
    // process of every host on every refresh.
    let mut fields = stat[close + 1..].split_ascii_whitespace();
    let Some(state) = fields.next().and_then(|s| s.chars().next()) else {
        return;
    };
    // Index 0 was the state; these are indices 1..=19.
    let mut numbers = [0u64; 20];
    for slot in numbers.iter_mut().skip(1) {
        match fields.next().and_then(|f| f.parse::<i64>().ok()) {
            Some(n) => *slot = n.max(0) as u64,
            None => return,
        }
    }
    let number = |index: usize| Some(numbers[index]);
    let (Some(ppid), Some(pgid), Some(start)) = (number(1), number(2), number(19)) else {
        return;
    };
    process.comm = stat[open + 1..close].to_string();
    process.state = state;
    process.ppid = ppid as u32;
    process.pgid = pgid as u32;
    process.start_ticks = start;
    process.cpu_ticks = numbers[11..=14].iter().sum();
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
pub(crate) mod tests {
    use super::*;

    /// A listing and its detail answer, as the loop prints them for
    /// `nonce`: the stat records go in the listing, the others in the
    /// answer, with `users`, `verdicts` (`same 7`...) and `dirs` (ls lines).
    pub(crate) fn listing_of(
        records: &[String],
        users: &str,
        verdicts: &str,
        dirs: &str,
        nonce: &str,
    ) -> ProcessListing {
        let (stats, details): (Vec<&String>, Vec<&String>) =
            records.iter().partition(|r| r.contains("/stat:"));
        let concat = |list: Vec<&String>| list.iter().map(|s| s.as_str()).collect::<String>();
        let section = format!(
            "hz=100\nuptime=1000.50\nprocesses\n{}\nrecords-end {nonce}\n",
            concat(stats)
        );
        let mut listing = ProcessListing::parse(&section, nonce).unwrap();
        let mut answer = format!(
            "users={users}\nrecords\n{}\nrecords-end {nonce}\n{verdicts}",
            concat(details)
        );
        if !dirs.is_empty() {
            answer.push_str(&format!("build-dirs\n{dirs}records-end {nonce}\n"));
        }
        listing.apply_detail(&answer, nonce);
        listing
    }

    fn record(text: &str) -> String {
        format!("{text}\0")
    }

    /// Recorded on a 2.8 builder (pids and numbers kept): the serving
    /// `nix-store --serve --write` (5100) under sshd (5090), its builder
    /// (5120) and that builder's child (5121).
    fn recorded() -> Vec<String> {
        [
            "/proc/5090/stat:5090 (sshd) S 700 5090 5090 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 90000",
            "/proc/5090/status:Uid:\t0",
            "/proc/5100/stat:5100 (nix-store) S 5090 5100 5100 0 -1 4194560 10 0 0 0 30 5 0 0 20 0 1 0 90010",
            "/proc/5100/status:Uid:\t0",
            "/proc/5100/environ:SSH_CONNECTION=127.0.0.1 40022 127.0.0.11 2222",
            "/proc/5100/cmdline:--serve",
            "/proc/5120/stat:5120 (bash) S 5100 5120 5120 0 -1 4194560 10 0 0 0 7 3 40 2 20 0 1 0 95000",
            "/proc/5120/status:Uid:\t30001",
            "/proc/5120/environ:name=hello-2.12",
            "/proc/5120/environ:out=/nix/store/aaaa-hello-2.12",
            "/proc/5120/environ:NIX_BUILD_TOP=/tmp/nix-build-hello-2.12.drv-0",
            "/proc/5121/stat:5121 (cc1 (weird)\nx) R 5120 5120 5120 0 -1 4194560 10 0 0 0 300 20 0 0 20 0 1 0 99000",
            "/proc/5121/status:Uid:\t30001",
            "/proc/5121/cmdline:5",
            "/proc/9/cmdline:60",
        ]
        .iter()
        .map(|r| record(r))
        .collect()
    }

    #[test]
    fn a_recorded_listing_and_its_details_are_read_whole() {
        let dirs = "drwx------ 2 30001 30000 4096 Nov 21 10:00 /tmp/nix-build-hello-2.12.drv-0\n\
                    drwx------ 2 30002 30000 4096 Nov 21  2025 /nix/var/nix/builds/nix-5100-0\n";
        let listing = listing_of(
            &recorded(),
            " 0:root 30001:nixbld1",
            "same 5100\n",
            dirs,
            "N1",
        );
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
        assert_eq!(child.comm, "cc1 (weird)\nx", "a newline in a name is data");
        assert_eq!((child.state, child.numbers.as_slice()), ('R', &[5][..]));
        assert!(listing.other_store.is_empty());
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
        assert_eq!(
            listing.detail_pids(),
            [5100, 5120],
            "Nix's process and its builder"
        );
    }

    /// Text a process chose cannot end a block or add lines: only the
    /// nonce rbtop made up ends one.
    #[test]
    fn names_and_values_cannot_forge_the_framing() {
        let forged = [
            record(
                "/proc/5/stat:5 (x\nrecords-end N1\nother 7\nbuild-dirs) S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100",
            ),
            record("/proc/7/stat:7 (nix-store) S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100"),
            record("/proc/7/environ:name=x\nrecords-end WRONG\nother 7\n"),
        ];
        let listing = listing_of(&forged, "", "same 7\n", "", "REAL");
        assert_eq!(listing.processes.len(), 2);
        assert!(listing.other_store.is_empty(), "{:?}", listing.other_store);
        assert!(listing.processes[1].env["name"].starts_with("x\nrecords-end WRONG"));
        // A listing whose block never ends is refused, not half read.
        let cut = "hz=100\nuptime=5\nprocesses\n/proc/1/stat:1 (init) S 0 1 1";
        assert_eq!(
            ProcessListing::parse(cut, "N").unwrap_err().to_string(),
            "the process list was cut short"
        );
    }

    #[test]
    fn a_user_name_ending_in_records_is_a_name() {
        let records = [
            record("/proc/7/stat:7 (nix-store) S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100"),
            record("/proc/7/status:Uid:\t1001"),
        ];
        let listing = listing_of(&records, " 1001:records", "", "", "N");
        assert_eq!(listing.processes[0].uid, Some(1001), "the uid is kept");
        assert_eq!(listing.user_name(Some(1001)), "records");
    }

    #[test]
    fn unsupported_hosts_and_missing_uptime_are_errors() {
        let unsupported =
            ProcessListing::parse("unsupported=this host has no Linux /proc\n", "N").unwrap_err();
        assert_eq!(
            unsupported,
            ListingError::Unsupported("this host has no Linux /proc".into())
        );
        assert_eq!(unsupported.to_string(), "this host has no Linux /proc");
        assert_eq!(
            ProcessListing::parse("hz=100\nprocesses\nrecords-end N\n", "N").unwrap_err(),
            ListingError::NoUptime
        );
        let nothing = ProcessListing::parse("hz=100\n", "N").unwrap_err();
        assert_eq!(
            (nothing.clone(), nothing.to_string().as_str()),
            (
                ListingError::NoProcessList,
                "the builder's answer has no process list"
            )
        );
    }

    #[test]
    fn an_idle_host_lists_no_process_and_unknown_uids_show_as_numbers() {
        let listing =
            ProcessListing::parse("hz=0\nuptime=5\nprocesses\n\nrecords-end N\n", "N").unwrap();
        assert_eq!(listing.hz, 100, "a zero hz is not believed");
        assert!(listing.processes.is_empty());
        assert!(
            listing.detail_pids().is_empty(),
            "no build: no detail request"
        );
        assert_eq!(listing.user_name(Some(42)), "42");
        assert_eq!(listing.user_name(None), "?");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any listing and detail answer, with hostile process names
        /// (escapes, parentheses, newlines): parsed or refused, never a panic.
        #[test]
        fn any_listing_and_detail_never_panic(
            names in proptest::collection::vec("[ -~\x1b\n)(]{0,24}", 0..12),
            fields in proptest::collection::vec("[0-9 -]{0,12}", 0..12),
            junk in "[ -~\n\x00]{0,200}",
        ) {
            let records: String = names
                .iter()
                .zip(fields.iter().chain(std::iter::repeat(&String::new())))
                .enumerate()
                .map(|(i, (name, rest))| format!("/proc/{}/stat:{i} ({name}) S {rest}\0", i + 2))
                .collect();
            let section = format!("hz=100\nuptime=10.5\nprocesses\n{records}{junk}\nrecords-end n\n");
            if let Ok(mut listing) = ProcessListing::parse(&section, "n") {
                listing.apply_detail(&format!("users={junk}\nrecords\n{records}\nrecords-end n\n{junk}"), "n");
            }
            let _ = ProcessListing::parse(&junk, "n");
        }
    }
}
