//! The real `rbtop` binary on hostile and odd input: special files named as
//! the machines file or the config, symlink loops, control bytes in a
//! machines file, a line of 20,000 entries, and a closed stdout or stderr.
//! Each ends with a clear message and the usual exit status, never a hang,
//! a panic or an escape sequence on the terminal.

use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/run.rs"]
mod run;
#[path = "support/sandbox.rs"]
mod sandbox;

use run::{Run, assert_says};
use sandbox::Sandbox;

fn rbtop(sb: &Sandbox) -> Command {
    let mut cmd = sb.rbtop();
    cmd.env("NIX_CONF_DIR", sb.path("nixconf"));
    cmd
}

/// Runs `cmd`, killing it if it has not finished in a minute (a hang is the
/// failure being tested for, and must not hang the test suite).
fn run_bounded(cmd: &mut Command) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Read both pipes while waiting (a full pipe would stall rbtop).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("rbtop hung on {cmd:?}");
        }
    };
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn special_files_as_machines_or_config_are_named_errors_not_hangs() {
    let sb = Sandbox::new("rbtop-hostile");
    let fifo = sb.path("fifo");
    mkfifo(&fifo);
    for path in ["/dev/zero".as_ref(), fifo.as_path()] {
        let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(path));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_says(&r.stderr, &format!("{} is a ", path.display()));
        assert_says(&r.stderr, "not a regular file");

        let r = run_bounded(rbtop(&sb).arg("--config").arg(path).arg("machines"));
        assert_ne!(r.code, 0, "{}", r.stderr);
        assert_says(&r.stderr, &format!("{} is a ", path.display()));
    }
    let machines = sb.write(
        "machines",
        &format!("ssh://kept\n@/dev/zero\n@{}\n", fifo.display()),
    );
    let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(&machines));
    assert_says(&r.stdout, "ssh://kept");
    assert_says(&r.stderr, "/dev/zero is a character device");
}

#[test]
fn a_symlink_loop_is_reported_as_one() {
    let sb = Sandbox::new("rbtop-hostile");
    let (a, b) = (sb.path("a"), sb.path("b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(&a));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_says(&r.stderr, "is a symlink loop");
    assert!(!r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn control_bytes_in_a_machines_file_are_shown_not_obeyed() {
    let sb = Sandbox::new("rbtop-hostile");
    let machines = sb.write(
        "machines",
        "ssh://a%1bb%0a x86_64-linux\nssh://t\x1b]0;TITLE\x07 - - 1\nssh://c x86_64-linux - many\x1b[2J\n",
    );
    let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(&machines));
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "{name} holds an escape:\n{text:?}"
        );
    }
    assert_says(&r.stdout, "TITLE\\x07");
    assert_says(&r.stderr, "many\\x1b[2J");
}

#[test]
fn a_line_of_20000_entries_gives_bounded_output() {
    let sb = Sandbox::new("rbtop-hostile");
    // Each entry is the same machine: one warning each, with the line.
    let line = vec!["b"; 20_000].join(";");
    let machines = sb.write("machines", &format!("{line}\n"));
    let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(&machines));
    assert_eq!(r.code, 0, "{}", &r.stderr[..r.stderr.len().min(2000)]);
    assert_eq!(
        r.stdout.lines().filter(|l| l.contains("ssh://b")).count(),
        20_000
    );
    // Was 1.2 GB: each of 19,999 warnings quoted the whole 40 KB line.
    assert!(
        r.stderr.len() < 64 * 1024,
        "{} bytes of diagnostics",
        r.stderr.len()
    );
    assert_says(&r.stderr, "19979 more warning(s) about this line not shown");
}

/// A reader that closes its end at once: rbtop's writes get EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    unsafe { Stdio::from_raw_fd(fds[1]) }
}

use std::os::fd::FromRawFd;

#[test]
fn a_closed_stdout_or_stderr_is_no_panic() {
    let sb = Sandbox::new("rbtop-hostile");
    let machines = sb.write("machines", "ssh://a\nssh://b - - many\n");
    let m = machines.to_str().unwrap();
    // (arguments, the usual exit status): a rejected line, a usage error
    // (said with eprintln before, which panicked on EPIPE: exit 101), and
    // check's JSON of no machines (println).
    let empty = sb.write("empty", "");
    let cases: [(Vec<&str>, i32); 3] = [
        (vec!["machines", "--machines", m], 1),
        (vec!["machines", "--machines", "/nonexistent/machines"], 2),
        (
            vec!["check", "--json", "--machines", empty.to_str().unwrap()],
            1,
        ),
    ];
    for (args, code) in cases {
        for (out, err) in [(true, false), (false, true), (true, true)] {
            let mut cmd = rbtop(&sb);
            cmd.args(&args);
            cmd.stdout(if out { closed_pipe() } else { Stdio::null() });
            cmd.stderr(if err { closed_pipe() } else { Stdio::null() });
            let status = cmd.status().unwrap();
            assert_eq!(
                status.code(),
                Some(code),
                "{args:?}, stdout closed {out}, stderr closed {err}"
            );
        }
    }
}

#[test]
fn rbtops_own_log_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new("rbtop-hostile");
    let machines = sb.write("machines", "ssh://a\n");
    let r = run_bounded(rbtop(&sb).arg("machines").arg("--machines").arg(&machines));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = sb.path("state/rbtop");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!logs.is_empty(), "no log in {}", dir.display());
    for log in logs {
        assert_eq!(mode(&log), 0o600, "{}", log.display());
    }
}
