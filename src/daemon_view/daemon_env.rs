//! The running nix-daemon's own `NIX_SSHOPTS`: its build hook passes them to
//! ssh, so they are part of root's SSH view. The daemon is the process
//! listening on the socket (its credentials, `SO_PEERCRED`, name it: other
//! nix-daemons may run in other mount namespaces, as the test fleet's
//! builders do); its environment is read from `/proc/PID/environ`, which
//! only root (the daemon's account) may read.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The daemon found, and its `NIX_SSHOPTS` if it has any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DaemonEnv {
    pub(super) pid: u32,
    pub(super) nix_sshopts: Option<String>,
}

/// The process listening on `socket` and its `NIX_SSHOPTS`, if it can be
/// reached and its environment read. Connecting makes the daemon fork a
/// worker, which ends at once on the closed connection.
pub(super) fn of_socket(socket: &Path, proc: &Path) -> Option<DaemonEnv> {
    let pid = listener_pid(socket)?;
    let environ = std::fs::read(proc.join(pid.to_string()).join("environ")).ok()?;
    Some(DaemonEnv {
        pid,
        nix_sshopts: variable(&environ, "NIX_SSHOPTS"),
    })
}

/// The pid the listener of `socket` had when it called `listen`.
fn listener_pid(socket: &Path) -> Option<u32> {
    let stream = UnixStream::connect(socket).ok()?;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given;
    // the fd is open for the call's duration.
    let status = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    (status == 0 && cred.pid > 0).then_some(cred.pid as u32)
}

/// One variable of a NUL-separated environment block.
fn variable(environ: &[u8], name: &str) -> Option<String> {
    environ
        .split(|&b| b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_is_named_by_its_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(listener_pid(&path), Some(std::process::id()));
        let found = of_socket(&path, Path::new("/proc")).unwrap();
        assert_eq!(found.pid, std::process::id());
        assert_eq!(
            found.nix_sshopts,
            std::env::var("NIX_SSHOPTS").ok(),
            "this process's own environment, as it began"
        );
        assert_eq!(listener_pid(&dir.path().join("none")), None);
    }

    #[test]
    fn a_variable_is_read_whole_and_not_by_prefix() {
        let environ = b"PATH=/bin\0NIX_SSHOPTSX=1\0NIX_SSHOPTS=-F /etc/daemon ssh\0";
        assert_eq!(
            variable(environ, "NIX_SSHOPTS").as_deref(),
            Some("-F /etc/daemon ssh")
        );
        assert_eq!(variable(b"HOME=/root\0", "NIX_SSHOPTS"), None);
    }
}
