//! The processes a job started, found through `/proc` (Linux), so that a
//! cancel can end the ones that left its process group: Nix runs its build
//! hook in a group of its own, and the hook's ssh with it.

use std::collections::HashMap;

/// A process, told apart from a later one with the same pid by its start
/// time (field 22 of `/proc/PID/stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Process {
    pub pid: u32,
    pub start_time: u64,
}

/// What rbtop needs of `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// `R`, `S`, `Z` (zombie), ...
    pub state: char,
    pub ppid: u32,
    pub start_time: u64,
}

/// Fields 3 (state), 4 (ppid) and 22 (starttime) of a `/proc/PID/stat` text.
pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
    let fields = crate::proc_stat::fields_after_name(stat)?;
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The running process `pid`, with its start time.
pub(crate) fn process(pid: u32) -> Option<Process> {
    read_stat(pid).map(|stat| Process {
        pid,
        start_time: stat.start_time,
    })
}

/// Every live descendant of `root` (not `root` itself).
pub(crate) fn descendants(root: u32) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<Process>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_stat(pid) {
            children.entry(stat.ppid).or_default().push(Process {
                pid,
                start_time: stat.start_time,
            });
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for child in children.remove(&pid).unwrap_or_default() {
            stack.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// Whether this exact process still runs: same start time (not a reused
/// pid) and not a zombie waiting to be reaped.
pub(crate) fn is_alive(process: Process) -> bool {
    read_stat(process.pid)
        .is_some_and(|stat| stat.state != 'Z' && stat.start_time == process.start_time)
}

/// `PID command line`, for logs.
pub(crate) fn describe(process: Process) -> String {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", process.pid)).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    format!("{} {}", process.pid, args.join(" "))
}

/// SIGKILL each process that is still the one recorded; returns how many.
pub(crate) fn kill_all(processes: &[Process]) -> usize {
    processes
        .iter()
        .filter(|p| is_alive(**p))
        .filter(|p| {
            let Ok(pid) = libc::pid_t::try_from(p.pid) else {
                return false;
            };
            // SAFETY: kill(2) with a pid and a signal number touches no memory.
            unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let stat = "1234 (a (weird) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                state: 'S',
                ppid: 77,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_a_grandchild_and_kills_it() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = descendants(child.id());
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found.len(), 1, "the sleep under sh: {found:?}");
        let sleeper = found[0];
        assert!(is_alive(sleeper));
        assert_eq!(kill_all(&[sleeper]), 1);
        let _ = child.wait();
        assert!(!is_alive(sleeper));
    }
}
