//! The wording of this machine's build slots and upload locks: why they
//! could not be read, and who holds one since when. Shared by `rbtop check`
//! and the dashboard, so that both say the same thing.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::{LockHolder, PROC_LOCKS, SlotHolder, rfc3339};

/// Why a `current-load` directory could not be listed, for a person.
pub fn describe_dir_error(dir: &Path, error: &io::Error) -> String {
    let dir = dir.display();
    match error.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied reading {dir}; run rbtop as the user that owns it \
             (the one running the builds, root under the Nix daemon) or as root"
        ),
        io::ErrorKind::NotADirectory => {
            format!("{dir} is not a directory (or a parent of it is a file)")
        }
        _ => format!("cannot list {dir}: {error}"),
    }
}

/// Why `/proc/locks` could not be read, for a person.
pub(super) fn describe_locks_error(error: &io::Error) -> String {
    format!(
        "cannot read {PROC_LOCKS}: {error}; rbtop needs it (Linux only) to see \
         which build slots are locked without locking them"
    )
}

/// `0 held by pid 4242 since ...`: who holds slot `holder.slot`, and since
/// when ([`since`], for `rbtop check`) or for how long ([`held_for`], for the
/// dashboard).
pub fn slot_holder(holder: &SlotHolder, when: &str) -> String {
    format!("{} {}", holder.slot, held_by(holder.pid, when))
}

/// `held by pid 4242 since ...`: the hook copying inputs to a machine.
pub fn upload_lock_holder(lock: &LockHolder, when: &str) -> String {
    held_by(lock.pid, when)
}

fn held_by(pid: u32, when: &str) -> String {
    format!("held by pid {pid} {when}")
}

/// `since 2026-11-21T10:00:00Z` (RFC 3339, UTC), or `since ?` when unknown.
pub fn since(time: Option<SystemTime>) -> String {
    format!("since {}", rfc3339(time).unwrap_or_else(|| "?".into()))
}

/// `for 3m 20s`, given the age as the caller writes it.
pub fn held_for(age: &str) -> String {
    format!("for {age}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_directory() {
        let dir = Path::new("/nix/var/nix/current-load");
        let denied = describe_dir_error(dir, &io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(denied.contains("permission denied"), "{denied}");
        assert!(denied.contains("/nix/var/nix/current-load"), "{denied}");
        assert!(denied.contains("root"), "{denied}");
        let other = describe_dir_error(dir, &io::Error::other("disk on fire"));
        assert!(
            other.contains("/nix/var/nix/current-load: disk on fire"),
            "{other}"
        );
        let locks = describe_locks_error(&io::Error::from(io::ErrorKind::NotFound));
        assert!(locks.contains("/proc/locks"), "{locks}");
    }

    #[test]
    fn holders_read_the_same_wherever_they_are_shown() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let holder = SlotHolder {
            slot: 1,
            pid: 4242,
            since: Some(at),
        };
        assert_eq!(
            slot_holder(&holder, &since(holder.since)),
            "1 held by pid 4242 since 2023-11-14T22:13:20Z"
        );
        assert_eq!(
            slot_holder(&holder, &held_for("3m 20s")),
            "1 held by pid 4242 for 3m 20s"
        );
        let lock = LockHolder {
            pid: 7,
            since: None,
        };
        assert_eq!(
            upload_lock_holder(&lock, &since(lock.since)),
            "held by pid 7 since ?"
        );
    }
}
