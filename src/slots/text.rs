//! Why this machine's build slots could not be read, for a person.

use std::io;
use std::path::Path;

use super::PROC_LOCKS;

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
}
