//! Which of a machine's `current-load` files are locked, and by whom: one
//! `readdir`, one `stat` per file of a known machine, one read of
//! `/proc/locks` (see the module doc of [`crate::slots`]).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::file_names::file_name_candidates;
use super::text::{describe_dir_error, describe_locks_error};
use super::{LocalLoad, LockHolder, MachineLoad, SlotHolder};
use crate::machines::Machine;

/// Where Linux lists the file locks held on the system.
pub const PROC_LOCKS: &str = "/proc/locks";
const UPLOAD_LOCK_SUFFIX: &str = ".upload-lock";

/// The lock families of `/proc/locks` that hold something on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// `flock(2)`: what Nix's hook uses.
    Flock,
    /// `fcntl(F_SETLK)` record locks.
    Posix,
    /// Open-file-description locks (`F_OFD_SETLK`).
    Ofdlck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Read,
    Write,
}

/// One lock held (not waited for) on a file, as `/proc/locks` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LockEntry {
    pub kind: LockKind,
    pub mode: LockMode,
    /// As printed: 0 when the holder is in another pid namespace, -1 for
    /// `OFDLCK` (such locks belong to no process).
    pub pid: i32,
    /// The file system's device numbers (printed in hex).
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
}

/// The holders listed in `/proc/locks` text, in order. Waiters (`-> ...`),
/// leases, delegations, `UNLCK` entries and lines without an inode are
/// skipped, as are lines that do not parse.
pub fn parse_proc_locks(text: &str) -> Vec<LockEntry> {
    text.lines().filter_map(parse_lock_line).collect()
}

/// `1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF`
fn parse_lock_line(line: &str) -> Option<LockEntry> {
    let mut tokens = line.split_whitespace();
    let id = tokens.next()?.strip_suffix(':')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = match tokens.next()? {
        "FLOCK" => LockKind::Flock,
        "POSIX" => LockKind::Posix,
        "OFDLCK" => LockKind::Ofdlck,
        _ => return None, // "->" (a waiter), LEASE, DELEG, ACCESS, UNKNOWN
    };
    let _advisory = tokens.next()?; // ADVISORY, MANDATORY, *NOINODE*
    let mode = match tokens.next()? {
        "WRITE" => LockMode::Write,
        "READ" => LockMode::Read,
        _ => return None,
    };
    let pid = tokens.next()?.parse().ok()?;
    let mut device = tokens.next()?.split(':');
    let dev_major = u32::from_str_radix(device.next()?, 16).ok()?;
    let dev_minor = u32::from_str_radix(device.next()?, 16).ok()?;
    let inode = device.next()?.parse().ok()?;
    if device.next().is_some() {
        return None;
    }
    Some(LockEntry {
        kind,
        mode,
        pid,
        dev_major,
        dev_minor,
        inode,
    })
}

/// The slot files of one machine found in the directory.
#[derive(Default)]
struct MachineFiles {
    /// (slot, file name)
    slots: Vec<(u32, String)>,
    upload_locks: Vec<String>,
}

/// What `stat` says about a slot or upload-lock file.
struct FileId {
    device: (u32, u32),
    inode: u64,
    mtime: Option<SystemTime>,
}

/// The loads of `machines` from the files in `dir`; `read_locks` gives the
/// text of `/proc/locks` and `mount_device` a path's mount device, so that
/// tests can stand in for both.
pub(super) fn read_using(
    dir: &Path,
    machines: &[Machine],
    read_locks: impl FnOnce() -> io::Result<String>,
    mount_device: impl FnOnce(&Path) -> Option<(u32, u32)>,
) -> LocalLoad {
    let unreadable = |reason| LocalLoad::Unreadable {
        dir: dir.to_path_buf(),
        reason,
    };
    let idle = || LocalLoad::Readable {
        machines: machines
            .iter()
            .map(|m| MachineLoad::idle(m.max_jobs))
            .collect(),
    };

    let names = match list_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return idle(),
        Err(e) => return unreadable(describe_dir_error(dir, &e)),
    };
    let files: Vec<MachineFiles> = machines
        .iter()
        .map(|m| files_of(&names, &file_name_candidates(m.uri())))
        .collect();
    if files
        .iter()
        .all(|f| f.slots.is_empty() && f.upload_locks.is_empty())
    {
        return idle(); // no lock to look up: spare the read of /proc/locks
    }

    let mut ids: HashMap<&str, FileId> = HashMap::new();
    for name in files
        .iter()
        .flat_map(|f| f.slots.iter().map(|(_, n)| n).chain(&f.upload_locks))
    {
        if ids.contains_key(name.as_str()) {
            continue;
        }
        match fs::metadata(dir.join(name)) {
            Ok(meta) => {
                let id = FileId {
                    device: split_dev(meta.dev()),
                    inode: meta.ino(),
                    mtime: meta.modified().ok(),
                };
                ids.insert(name, id);
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return unreadable(describe_dir_error(dir, &e));
            }
            Err(_) => {} // removed since the readdir: not locked
        }
    }

    let text = match read_locks() {
        Ok(text) => text,
        Err(e) => return unreadable(describe_locks_error(&e)),
    };
    let locks = FlockTable::new(&parse_proc_locks(&text));

    // On btrfs/overlayfs st_dev differs from the device /proc/locks prints;
    // look up the mount's device only if that can matter.
    let needs_mount_device = ids
        .values()
        .any(|id| locks.holder(id.device, id.inode).is_none() && locks.has_inode(id.inode));
    let mount_device = needs_mount_device.then(|| mount_device(dir)).flatten();
    let holder_of = |name: &str| -> Option<u32> {
        let id = ids.get(name)?;
        let entry = locks
            .holder(id.device, id.inode)
            .or_else(|| locks.holder(mount_device?, id.inode))?;
        // Only FLOCK entries are kept, and those carry a real pid (>= 0).
        Some(u32::try_from(entry.pid).unwrap_or(0))
    };

    let loads = machines
        .iter()
        .zip(&files)
        .map(|(machine, files)| {
            let mut load = MachineLoad::idle(machine.max_jobs);
            let mut busy_slots = HashSet::new();
            for (slot, name) in &files.slots {
                let Some(pid) = holder_of(name) else { continue };
                if *slot < machine.max_jobs {
                    busy_slots.insert(*slot);
                }
                load.holders.push(SlotHolder {
                    slot: *slot,
                    pid,
                    since: ids.get(name.as_str()).and_then(|id| id.mtime),
                });
            }
            load.busy = u32::try_from(busy_slots.len()).unwrap_or(u32::MAX);
            load.holders.sort_by_key(|h| (h.slot, h.pid));
            load.upload_lock = files
                .upload_locks
                .iter()
                .find_map(|name| holder_of(name))
                .map(|pid| LockHolder {
                    pid,
                    since: load
                        .holders
                        .iter()
                        .filter(|h| pid != 0 && h.pid == pid)
                        .filter_map(|h| h.since)
                        .max(),
                });
            load
        })
        .collect();
    LocalLoad::Readable { machines: loads }
}

/// The UTF-8 names in `dir` (Nix's names always are).
fn list_dir(dir: &Path) -> io::Result<HashSet<String>> {
    let mut names = HashSet::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The files named `<prefix>-<slot>` and `<prefix>.upload-lock` for any of
/// the prefixes. The slot is a canonical decimal (`%d`), so `a-1-0` is slot 0
/// of `a-1` and never a slot of `a`.
fn files_of(names: &HashSet<String>, prefixes: &[String]) -> MachineFiles {
    let mut files = MachineFiles::default();
    for name in names {
        for prefix in prefixes {
            let Some(rest) = name.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest == UPLOAD_LOCK_SUFFIX {
                files.upload_locks.push(name.clone());
            } else if let Some(slot) = rest.strip_prefix('-').and_then(parse_slot) {
                files.slots.push((slot, name.clone()));
            }
        }
    }
    files.slots.sort();
    files.upload_locks.sort();
    files
}

fn parse_slot(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// `FLOCK` holders by (device, inode); a `WRITE` entry wins over `READ`.
struct FlockTable {
    by_file: HashMap<((u32, u32), u64), LockEntry>,
    inodes: HashSet<u64>,
}

impl FlockTable {
    fn new(entries: &[LockEntry]) -> Self {
        let mut by_file: HashMap<((u32, u32), u64), LockEntry> = HashMap::new();
        let mut inodes = HashSet::new();
        for entry in entries.iter().filter(|e| e.kind == LockKind::Flock) {
            inodes.insert(entry.inode);
            let key = ((entry.dev_major, entry.dev_minor), entry.inode);
            by_file
                .entry(key)
                .and_modify(|held| {
                    if held.mode == LockMode::Read && entry.mode == LockMode::Write {
                        *held = *entry;
                    }
                })
                .or_insert(*entry);
        }
        FlockTable { by_file, inodes }
    }

    fn holder(&self, device: (u32, u32), inode: u64) -> Option<&LockEntry> {
        self.by_file.get(&(device, inode))
    }

    fn has_inode(&self, inode: u64) -> bool {
        self.inodes.contains(&inode)
    }
}

/// glibc's `major()`/`minor()` of a `st_dev`.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: LockKind, mode: LockMode, pid: i32, dev: (u32, u32), inode: u64) -> LockEntry {
        LockEntry {
            kind,
            mode,
            pid,
            dev_major: dev.0,
            dev_minor: dev.1,
            inode,
        }
    }

    #[test]
    fn proc_locks_holders_only() {
        let text = "\
1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF
1: -> FLOCK  ADVISORY  WRITE 12346 08:01:1234567 0 EOF
1:  -> FLOCK  ADVISORY  WRITE 12347 08:01:1234567 0 EOF
2: POSIX  ADVISORY  READ 812 00:2e:31 0 EOF
3: OFDLCK ADVISORY  WRITE -1 fd:01:9876543210 100 199
4: FLOCK  ADVISORY  READ 0 103:0a:42 0 EOF
5: LEASE  ACTIVE    READ 77 fd:01:5 0 EOF
6: DELEG  ACTIVE    READ 78 fd:01:6 0 EOF
7: POSIX  *NOINODE* WRITE 79 <none>:0 0 EOF
8: POSIX  ADVISORY  UNLCK 80 fd:01:7 0 EOF
not a lock line
9: FLOCK  ADVISORY  WRITE 81 zz:01:8 0 EOF
";
        let entries = parse_proc_locks(text);
        assert_eq!(
            entries,
            [
                entry(LockKind::Flock, LockMode::Write, 12345, (8, 1), 1234567),
                entry(LockKind::Posix, LockMode::Read, 812, (0, 0x2e), 31),
                entry(LockKind::Ofdlck, LockMode::Write, -1, (0xfd, 1), 9876543210),
                entry(LockKind::Flock, LockMode::Read, 0, (0x103, 0x0a), 42),
            ]
        );
        assert!(parse_proc_locks("").is_empty());
    }

    #[test]
    fn st_dev_splits_like_glibc() {
        assert_eq!(split_dev(0xfe00), (0xfe, 0));
        assert_eq!(split_dev(0x802), (8, 2));
        assert_eq!(split_dev(0x2e), (0, 0x2e));
        // major 0x103, minor 0x12345 in glibc's 64-bit encoding
        let dev = (0x103u64 & 0xfff) << 8 | (0x12345u64 & 0xff) | (0x12345u64 & !0xff) << 12;
        assert_eq!(split_dev(dev), (0x103, 0x12345));
    }

    #[test]
    fn slot_suffixes_are_canonical_decimals() {
        assert_eq!(parse_slot("0"), Some(0));
        assert_eq!(parse_slot("12"), Some(12));
        for bad in ["", "01", "-1", "1-0", "+1", "1a", "99999999999"] {
            assert_eq!(parse_slot(bad), None, "{bad}");
        }
        let names: HashSet<String> = ["a-0", "a-1", "a-1-0", "a-01", "a.upload-lock", "main-lock"]
            .into_iter()
            .map(String::from)
            .collect();
        let files = files_of(&names, &["a".to_owned()]);
        assert_eq!(files.slots, [(0, "a-0".to_owned()), (1, "a-1".to_owned())]);
        assert_eq!(files.upload_locks, ["a.upload-lock"]);
        let files = files_of(&names, &["a-1".to_owned()]);
        assert_eq!(files.slots, [(0, "a-1-0".to_owned())]);
    }

    mod with_files {
        use super::*;
        use crate::diagnostics::Origin;
        use crate::machines::{MachinesText, Parser};
        use crate::slots::read;

        fn machines(text: &str) -> Vec<Machine> {
            let mut parser = Parser::new(vec!["x86_64-linux".into()]);
            parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
            let parsed = parser.finish();
            assert_eq!(parsed.errors().count(), 0, "{text}");
            parsed.machines
        }

        fn stat(path: &Path) -> ((u32, u32), u64) {
            let meta = fs::metadata(path).unwrap();
            (split_dev(meta.dev()), meta.ino())
        }

        fn flock_line(pid: i32, (dev, inode): ((u32, u32), u64)) -> String {
            format!(
                "1: FLOCK  ADVISORY  WRITE {pid} {:02x}:{:02x}:{inode} 0 EOF\n",
                dev.0, dev.1
            )
        }

        #[test]
        fn missing_dir_means_idle_and_skips_proc_locks() {
            let tmp = tempfile::tempdir().unwrap();
            let ms = machines("b1 - - 3\nssh-ng://b2 - - 1");
            let load = read_using(
                &tmp.path().join("current-load"),
                &ms,
                || panic!("no need to read /proc/locks"),
                |_| panic!("no need for mountinfo"),
            );
            assert_eq!(
                load,
                LocalLoad::Readable {
                    machines: vec![MachineLoad::idle(3), MachineLoad::idle(1)]
                }
            );
        }

        #[test]
        fn constructed_locks_and_device_fallback() {
            let tmp = tempfile::tempdir().unwrap();
            let ms = machines("b1 - - 2\nb2 - - 2");
            for name in [
                "ssh:__b1-0",
                "ssh:__b1-1",
                "ssh:__b1-2",
                "ssh:__b2-0",
                "main-lock",
            ] {
                fs::write(tmp.path().join(name), "").unwrap();
            }
            let (dev, b1_0) = stat(&tmp.path().join("ssh:__b1-0"));
            let (_, b1_2) = stat(&tmp.path().join("ssh:__b1-2"));
            let (_, b2_0) = stat(&tmp.path().join("ssh:__b2-0"));

            // Exact device: b1 slot 0 and the stale slot 2, b2 only waited for.
            let text = flock_line(100, (dev, b1_0))
                + &flock_line(101, (dev, b1_2))
                + &format!(
                    "2: -> FLOCK  ADVISORY  WRITE 102 {:02x}:{:02x}:{b2_0} 0 EOF\n",
                    dev.0, dev.1
                )
                + &format!(
                    "3: POSIX  ADVISORY  WRITE 103 {:02x}:{:02x}:{b2_0} 0 EOF\n",
                    dev.0, dev.1
                );
            let load = read_using(tmp.path(), &ms, || Ok(text), |_| panic!("devices match"));
            let loads = load.machines().unwrap();
            assert_eq!(loads[0].busy, 1);
            assert_eq!(
                loads[0]
                    .holders
                    .iter()
                    .map(|h| (h.slot, h.pid))
                    .collect::<Vec<_>>(),
                [(0, 100), (2, 101)]
            );
            assert_eq!(loads[1], MachineLoad::idle(2));

            // /proc/locks names another device (btrfs): mountinfo decides.
            let other = (dev.0, dev.1.wrapping_add(1));
            let text = flock_line(100, (other, b2_0));
            let load = read_using(tmp.path(), &ms, || Ok(text.clone()), |_| Some(other));
            assert_eq!(load.machines().unwrap()[1].busy, 1);
            let load = read_using(tmp.path(), &ms, || Ok(text.clone()), |_| None);
            assert_eq!(load.machines().unwrap()[1].busy, 0);
            let load = read_using(tmp.path(), &ms, || Ok(text), |_| Some((9, 9)));
            assert_eq!(load.machines().unwrap()[1].busy, 0);
        }

        #[test]
        fn unreadable_proc_locks_is_reported() {
            let tmp = tempfile::tempdir().unwrap();
            fs::write(tmp.path().join("ssh:__b1-0"), "").unwrap();
            let load = read_using(
                tmp.path(),
                &machines("b1"),
                || Err(io::Error::from(io::ErrorKind::NotFound)),
                |_| None,
            );
            let LocalLoad::Unreadable { dir, reason } = load else {
                panic!("{load:?}")
            };
            assert_eq!(dir, tmp.path());
            assert!(reason.contains("/proc/locks"), "{reason}");
        }

        #[test]
        fn a_file_instead_of_a_dir_is_unreadable() {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            let load = read(tmp.path(), &machines("b1"));
            let LocalLoad::Unreadable { dir, reason } = load else {
                panic!("{load:?}")
            };
            assert_eq!(dir, tmp.path());
            assert!(
                reason.contains(&tmp.path().display().to_string()),
                "{reason}"
            );
            assert!(reason.contains("not a directory"), "{reason}");
        }
    }
}
