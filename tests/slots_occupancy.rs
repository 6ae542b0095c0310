//! Real locks on a real `current-load` directory, seen through the real
//! `/proc/locks`: what the build hook does, done by this test (and by a
//! `flock(1)` child when util-linux is installed).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rbtop::diagnostics::Origin;
use rbtop::machines::{Machine, MachinesText, Parser};
use rbtop::slots::{self, LocalLoad, MachineLoad};

fn machines(text: &str) -> Vec<Machine> {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    let parsed = parser.finish();
    assert_eq!(parsed.errors().count(), 0);
    parsed.machines
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Creates `dir/name` with the given mtime, as the hook's `futimens` does.
fn slot_file(dir: &Path, name: &str, mtime: SystemTime) {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))
        .unwrap();
    file.set_modified(mtime).unwrap();
}

/// Opens and `flock`s `dir/name` from this process; the lock lasts as long as
/// the returned file.
fn flock(dir: &Path, name: &str, operation: libc::c_int) -> File {
    let file = File::open(dir.join(name)).unwrap();
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock {name}: {}", std::io::Error::last_os_error());
    file
}

/// `flock -o -x <file> cat`: holds the lock until its stdin is closed.
fn flock_child(path: &Path) -> Option<Child> {
    let mut child = Command::new("flock")
        .args(["-o", "-x"])
        .arg(path)
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let inode = fs::metadata(path).unwrap().ino();
    let wanted = format!(" {} ", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let locks = fs::read_to_string("/proc/locks").unwrap();
        if locks.lines().any(|l| {
            l.contains("FLOCK") && l.contains(&wanted) && l.contains(&format!(":{inode} "))
        }) {
            return Some(child);
        }
        assert!(Instant::now() < deadline, "flock(1) never took the lock");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("flock(1) exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn loads(load: &LocalLoad) -> &[MachineLoad] {
    load.machines()
        .unwrap_or_else(|| panic!("expected readable: {load:?}"))
}

#[test]
fn locked_slots_are_busy_and_unlocked_ones_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("current-load");
    fs::create_dir(&dir).unwrap();
    let ms = machines(
        "ssh://b1?remote-store=/mnt&compress=true - - 3\n\
         ssh-ng://nix@b2 - - 2",
    );
    let b1 = slots::file_name_candidates(ms[0].uri());
    assert_eq!(
        b1,
        [
            "ssh:__b1?remote-store=_mnt&compress=true",
            "ssh:__b1?compress=true&remote-store=_mnt"
        ]
    );
    let (b1_v28, b1_new) = (&b1[0], &b1[1]);
    let b2 = "ssh-ng:__nix@b2";
    assert_eq!(slots::file_name_candidates(ms[1].uri()), [b2]);

    // Files as a mix of Nix 2.8 and newer hooks leave them, all idle.
    for slot in 0..3 {
        slot_file(&dir, &format!("{b1_v28}-{slot}"), at(1_000));
    }
    slot_file(&dir, &format!("{b1_v28}-5"), at(1_500)); // older max-jobs
    slot_file(&dir, &format!("{b1_new}-1"), at(1_000));
    slot_file(&dir, &format!("{b1_v28}.upload-lock"), at(10));
    slot_file(&dir, &format!("{b2}-0"), at(1_000));
    slot_file(&dir, &format!("{b2}-1"), at(1_000));
    slot_file(&dir, &format!("{b2}.upload-lock"), at(10));
    slot_file(&dir, "main-lock", at(10));

    let idle = slots::read(&dir, &ms);
    assert_eq!(
        loads(&idle),
        [
            MachineLoad {
                busy: 0,
                max: 3,
                holders: vec![],
                upload_lock: None
            },
            MachineLoad {
                busy: 0,
                max: 2,
                holders: vec![],
                upload_lock: None
            },
        ]
    );

    // Hooks pick slots: the mtime is set, then the lock is held.
    let me = std::process::id();
    slot_file(&dir, &format!("{b1_v28}-0"), at(1_700_000_000));
    slot_file(&dir, &format!("{b1_new}-1"), at(1_700_000_100));
    let held = [
        flock(&dir, &format!("{b1_v28}-0"), libc::LOCK_EX),
        flock(&dir, &format!("{b1_new}-1"), libc::LOCK_EX),
        flock(&dir, &format!("{b1_v28}-5"), libc::LOCK_EX),
        flock(&dir, &format!("{b1_v28}.upload-lock"), libc::LOCK_EX),
        // A shared lock makes Nix's LOCK_EX|LOCK_NB fail too.
        flock(&dir, &format!("{b2}-0"), libc::LOCK_SH),
    ];
    let mut child = flock_child(&dir.join(format!("{b2}-1")));
    let mut held_here = None;
    let b2_1_pid = match &child {
        Some(child) => child.id(),
        None => {
            eprintln!("flock(1) not installed: locking {b2}-1 from the test instead");
            held_here = Some(flock(&dir, &format!("{b2}-1"), libc::LOCK_EX));
            me
        }
    };

    let busy = slots::read(&dir, &ms);
    let busy = loads(&busy);
    assert_eq!(busy.len(), 2);

    let b1_load = &busy[0];
    assert_eq!((b1_load.busy, b1_load.max), (2, 3));
    let got: Vec<_> = b1_load
        .holders
        .iter()
        .map(|h| (h.slot, h.pid, h.since))
        .collect();
    assert_eq!(
        got,
        [
            (0, me, Some(at(1_700_000_000))),
            (1, me, Some(at(1_700_000_100))),
            (5, me, Some(at(1_500))), // listed, not counted
        ]
    );
    let upload = b1_load.upload_lock.as_ref().expect("upload lock held");
    assert_eq!(upload.pid, me);
    // The latest slot pick by the same process, not the file's own mtime.
    assert_eq!(upload.since, Some(at(1_700_000_100)));

    let b2_load = &busy[1];
    assert_eq!((b2_load.busy, b2_load.max), (2, 2));
    let got: Vec<_> = b2_load.holders.iter().map(|h| (h.slot, h.pid)).collect();
    assert_eq!(got, [(0, me), (1, b2_1_pid)]);
    assert_eq!(b2_load.upload_lock, None);

    // The same, through read_with_locks and a snapshot of /proc/locks.
    let text = fs::read_to_string(slots::PROC_LOCKS).unwrap();
    assert_eq!(loads(&slots::read_with_locks(&dir, &ms, &text))[0].busy, 2);

    // Jobs end: locks are released, the files stay.
    drop(held);
    drop(held_here);
    if let Some(child) = child.as_mut() {
        drop(child.stdin.take()); // EOF: cat, then flock(1), exit
        assert!(child.wait().unwrap().success());
    }
    let after = slots::read(&dir, &ms);
    assert_eq!(loads(&after), loads(&idle));
    assert!(dir.join(format!("{b1_v28}-0")).exists());
}

#[test]
fn no_current_load_dir_means_nothing_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let ms = machines("b1 - - 4");
    let load = slots::read(&tmp.path().join("current-load"), &ms);
    assert_eq!(
        load,
        LocalLoad::Readable {
            machines: vec![MachineLoad {
                busy: 0,
                max: 4,
                holders: vec![],
                upload_lock: None
            }]
        }
    );
}

#[test]
fn a_file_where_the_dir_should_be_is_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("current-load");
    fs::write(&path, "").unwrap();
    match slots::read(&path, &machines("b1")) {
        LocalLoad::Unreadable { dir, reason } => {
            assert_eq!(dir, path);
            assert!(reason.contains(&path.display().to_string()), "{reason}");
        }
        other => panic!("expected unreadable: {other:?}"),
    }
}
