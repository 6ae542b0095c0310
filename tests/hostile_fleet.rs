//! The hostile builder of the test fleet (`liar`, tests/fleet/README.md):
//! its store writes escapes and stderr without a newline for ever and never
//! answers; its facts loop answers without end. `rbtop check` must mark it
//! down with a clear reason, keep its memory bounded while the liar pours
//! out data (RSS sampled from /proc during the run), print no escape, and
//! report the healthy host as up. The liar also completes a worker-protocol
//! handshake when asked for `liar-version` (a version string and log frames
//! full of escapes) or `liar-huge` (a version string said to be 1 TiB long):
//! the first is up with its version shown inertly, the second fails on the
//! protocol string's bound. Asked for its substituters (with
//! `builders-use-substitutes`), the liar fails that check on the bound of a
//! script's answer. Needs root (the fleet).

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use fleet::{Fleet, FleetOptions};
use sandbox::Sandbox;

/// Resident memory of `pid` in KiB, while it runs.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_liar_is_down_with_a_reason_and_memory_stays_bounded() {
    let fleet = Fleet::start(FleetOptions {
        healthy: 1,
        faults: false,
        trixie: false,
        liar: true,
        ..Default::default()
    });
    let sb = Sandbox::new("rbtop-liar");
    for json in [true, false] {
        let mut cmd = sb.rbtop();
        cmd.env("NIX_CONF_DIR", sb.path("nixconf"))
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .arg("check")
            .arg("--machines")
            .arg(fleet.machines_file())
            .args(["--timeout", "5"])
            .args(if json { &["--json"][..] } else { &[][..] })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).unwrap();
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            stderr.read_to_string(&mut s).unwrap();
            s
        });
        // Sample while it runs: the liar writes as fast as ssh carries it.
        let mut peak = 0;
        let mut samples = 0;
        while child.try_wait().unwrap().is_none() {
            if let Some(kib) = rss_kib(pid) {
                peak = peak.max(kib);
                samples += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().unwrap();
        let (stdout, stderr) = (out_reader.join().unwrap(), err_reader.join().unwrap());
        assert!(samples > 10, "rbtop ran too briefly to sample ({samples})");
        eprintln!("json={json}: peak RSS {peak} KiB over {samples} samples");
        // Before the bounds, the tail of the liar's stderr grew without end.
        assert!(peak < 96 * 1024, "peak RSS {peak} KiB while the liar wrote");
        assert_eq!(status.code(), Some(1), "not all up\n{stdout}\n{stderr}");
        assert!(
            !stdout.contains('\x1b') && !stderr.contains('\x1b'),
            "{stdout:?}"
        );
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let hosts = report["hosts"].as_array().unwrap();
            let by_name = |n: &str| hosts.iter().find(|h| h["host"] == n).unwrap();
            assert_eq!(by_name("b1")["status"], "up", "{stdout}");
            let liar = by_name("liar");
            assert_ne!(liar["status"], "up", "{stdout}");
            let reason = liar["reason"].as_str().unwrap();
            assert!(reason.contains("no answer within 5"), "{reason}");
        } else {
            assert!(stdout.contains("1 of 2 up"), "{stdout}");
            assert!(stdout.lines().any(|l| l.starts_with("liar (")), "{stdout}");
        }
    }

    // `rbtop check --builders B [--json]`: its output, stdout and stderr.
    let check_builders = |builders: &str, json: bool| {
        let out = sb
            .rbtop()
            .env("NIX_CONF_DIR", sb.path("nixconf"))
            .env("NIX_SSHOPTS", fleet.nix_sshopts())
            .args(["check", "--builders", builders, "--timeout", "10"])
            .args(if json { &["--json"][..] } else { &[][..] })
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stdout, stderr)
    };

    // A handshake that completes, with hostile strings in it.
    let builders = "ssh-ng://liar?remote-program=liar-version x86_64-linux - 1 1 - - -; \
                    ssh-ng://liar?remote-program=liar-huge x86_64-linux - 1 1 - - -";
    for json in [true, false] {
        let (out, stdout, stderr) = check_builders(builders, json);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            !stdout.contains('\x1b') && !stderr.contains('\x1b'),
            "{stdout:?}"
        );
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let hosts = report["hosts"].as_array().unwrap();
            let (told, huge) = (&hosts[0], &hosts[1]);
            assert_eq!(told["status"], "up", "{stdout}");
            // JSON carries the true value; its encoding makes it inert.
            let version = told["nix_version"].as_str().unwrap();
            assert!(
                version.starts_with("2.8.0\x1b]0;LIAR-TITLE\x07"),
                "{version:?}"
            );
            assert_eq!(told["trusted"], true, "{stdout}");
            assert_eq!(huge["status"], "error", "{stdout}");
            let reason = huge["reason"].as_str().unwrap();
            assert!(
                reason.contains("nix version string is too long (1099511627776, at most"),
                "{reason}"
            );
        } else {
            assert!(stdout.contains("2.8.0\\x1b]0;LIAR-TITLE\\x07"), "{stdout}");
            assert!(stdout.contains("1 of 2 up"), "{stdout}");
        }
    }

    // With builders-use-substitutes each builder that is up runs rbtop's
    // substituters script; the liar answers it without end: that host's
    // check fails on the script answer's bound, b1's is unharmed.
    sb.write("nixconf/nix.conf", "builders-use-substitutes = true\n");
    let builders = "ssh-ng://liar?remote-program=liar-version x86_64-linux - 1 1 - - -; \
                    ssh://b1 x86_64-linux - 1 1 - - -";
    for json in [true, false] {
        let (out, stdout, stderr) = check_builders(builders, json);
        // Both up: a builder's substituters do not change the exit status.
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            !stdout.contains('\x1b') && !stderr.contains('\x1b'),
            "{stdout:?}"
        );
        let bound = "a script's answer is longer than rbtop's bound of 1048576 bytes";
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let hosts = report["hosts"].as_array().unwrap();
            let (liar, b1) = (&hosts[0], &hosts[1]);
            assert_eq!(liar["status"], "up", "{stdout}");
            assert_eq!(liar["builder_substituters"]["error"], bound, "{stdout}");
            assert!(b1["builder_substituters"]["error"].is_null(), "{stdout}");
        } else {
            assert!(
                stdout.contains(&format!("liar: not checked: {bound}")),
                "{stdout}"
            );
            assert!(stdout.contains("b1: none configured"), "{stdout}");
        }
    }
}
