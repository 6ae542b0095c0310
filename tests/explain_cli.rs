//! `rbtop explain` as a user runs it: on a real `.drv` written by the local
//! Nix, against machines that exercise every verdict, with a real probe and
//! a real lock on a build slot. Also its usage errors.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/run.rs"]
mod run;
#[path = "support/sandbox.rs"]
mod sandbox;

use run::{Run, assert_says, json, run};
use sandbox::Sandbox;
use serde_json::Value;

/// rbtop in the sandbox, with its own nix.conf directory, state directory
/// (for `current-load`) and ssh configuration.
fn rbtop(sb: &Sandbox, args: &[&str]) -> Run {
    run(sb
        .rbtop()
        .env("NIX_CONF_DIR", sb.path("nixconf"))
        .env("NIX_STATE_DIR", sb.path("nix-state"))
        .env(
            "NIX_SSHOPTS",
            format!(
                "-F /dev/null -o UserKnownHostsFile={}",
                sb.path("known_hosts").display()
            ),
        )
        .args(args))
}

/// `nix-instantiate` of `expression` into a chroot store at `store` (so the
/// test needs neither root nor the machine's /nix): the `.drv` file's path
/// on disk.
fn instantiate(sb: &Sandbox, store: &Path, expression: &str) -> PathBuf {
    let file = sb.write("drv.nix", expression);
    let out = Command::new("nix-instantiate")
        .arg("--store")
        .arg(store)
        .arg(&file)
        .env("NIX_CONF_DIR", sb.path("nixconf"))
        .env(
            "NIX_CONFIG",
            "substituters =\nexperimental-features = nix-command",
        )
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run nix-instantiate ({e}): install nix-bin or run inside `nix develop`")
        });
    assert!(
        out.status.success(),
        "nix-instantiate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logical = String::from_utf8(out.stdout).unwrap();
    let logical = logical.trim().trim_start_matches('/');
    let drv = store.join(logical);
    assert!(drv.is_file(), "{} was not written", drv.display());
    drv
}

/// The local Nix's version, to know which ranking arithmetic it uses.
fn local_nix_minor() -> u32 {
    let out = Command::new("nix-store").arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let version = text.split_whitespace().last().unwrap();
    let mut parts = version.split('.');
    assert_eq!(parts.next(), Some("2"), "{text}");
    parts.next().unwrap().parse().unwrap()
}

/// Takes build slot `slot` of `uri` as the build hook would: an exclusive
/// `flock` on `current-load/<uri with / as _>-<slot>`, held while the
/// returned file lives.
fn take_slot(state: &Path, uri: &str, slot: u32) -> File {
    let dir = state.join("current-load");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{slot}", uri.replace('/', "_")));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock {}", path.display());
    file
}

fn rules(machine: &Value) -> Vec<&str> {
    machine["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect()
}

#[test]
fn explains_a_real_derivation_against_every_kind_of_machine() {
    let sb = Sandbox::new("rbtop-explain");
    // This machine's own capacity, fixed: no kvm here, so the build must go
    // to a builder.
    sb.write(
        "nixconf/nix.conf",
        "system = x86_64-linux\nsystem-features = benchmark big-parallel\n",
    );
    let store = sb.path("store");
    let drv = instantiate(
        &sb,
        &store,
        r#"derivation {
          name = "rbtop-explain-cli";
          system = "x86_64-linux";
          builder = "/bin/sh";
          args = [ "-c" "echo \"quoted\" \\ and\n\ttabbed > $out" ];
          requiredSystemFeatures = [ "kvm" ];
        }"#,
    );
    // Nix 2.8 forbids ports in these URIs: the down hosts are names that
    // never resolve (RFC 6761), the up one is this machine's Nix, reached
    // without ssh as Nix reaches `ssh://localhost`.
    let up = format!("ssh://localhost?remote-store={}", store.display());
    let builders = [
        format!("{up} x86_64-linux - 2 1 kvm"),
        "ssh://nosuch.invalid x86_64-linux - 1 4 kvm".to_string(),
        "ssh://full.invalid x86_64-linux - 1 1 kvm".to_string(),
        "ssh://arm.invalid aarch64-linux - 1 1 kvm".to_string(),
        "ssh://nokvm.invalid x86_64-linux - 1 1 big-parallel".to_string(),
        "ssh://bench.invalid x86_64-linux - 1 1 kvm benchmark".to_string(),
        "ssh://mandatory.invalid x86_64-linux - 1 1 - kvm".to_string(),
    ]
    .join("\n");
    let _slot = take_slot(&sb.path("nix-state"), "ssh://full.invalid", 0);
    let drv_arg = drv.to_str().unwrap();
    let explain = |more: &[&str]| {
        let args = [
            "--builders",
            &builders,
            "explain",
            drv_arg,
            "--timeout",
            "5",
        ];
        rbtop(&sb, &[&args[..], more].concat())
    };
    let r = explain(&["--json"]);
    let v = json(&r);
    assert_eq!(r.code, 0, "{v:#}\n{}", r.stderr);

    assert_eq!(v["requirement"]["system"], "x86_64-linux");
    assert_eq!(v["requirement"]["features"], serde_json::json!(["kvm"]));
    let derivation = &v["requirement"]["derivation"];
    assert_eq!(derivation["path"], drv_arg);
    assert_eq!(derivation["name"], "rbtop-explain-cli");
    assert_eq!(derivation["prefer_local_build"], false);

    let integer = local_nix_minor() < 20;
    assert_eq!(
        v["ranking"]["division"],
        if integer { "integer" } else { "float" },
        "{:#}",
        v["ranking"]
    );
    assert_eq!(v["slots"]["readable"], true, "{:#}", v["slots"]);

    let m = v["machines"].as_array().unwrap();
    assert_eq!(m.len(), 7);
    // Up, free: Nix's pick once the faster down host has failed.
    assert_eq!(m[0]["status"], "up", "{:#}", m[0]);
    assert_eq!(m[0]["availability"], "free");
    assert_eq!(m[0]["rank"], 1);
    assert_eq!(m[0]["busy"], 0);
    // Eligible and free but down: not ranked, though Nix would try it first.
    assert!(rules(&m[1]).is_empty());
    assert_ne!(m[1]["status"], "up", "{:#}", m[1]);
    assert_eq!(m[1]["availability"], "down");
    assert_eq!(m[1]["rank"], Value::Null);
    assert_eq!(m[1]["score"], 0);
    // The slot this test holds makes it full.
    assert_eq!(m[2]["availability"], "full", "{:#}", m[2]);
    assert_eq!(m[2]["busy"], 1);
    assert_eq!(m[2]["score"], Value::Null);
    // One machine per rule, not probed.
    assert_eq!(rules(&m[3]), ["system_not_listed"]);
    assert_eq!(
        m[3]["rejections"][0]["message"],
        "system 'x86_64-linux' not in 'aarch64-linux'"
    );
    assert_eq!(rules(&m[4]), ["feature_missing"]);
    assert_eq!(
        m[4]["rejections"][0]["message"],
        "required feature 'kvm' not supported (supported: big-parallel, mandatory: -)"
    );
    assert_eq!(rules(&m[5]), ["mandatory_not_required"]);
    assert_eq!(
        m[5]["rejections"][0]["message"],
        "mandatory feature 'benchmark' not required (the build requires: kvm)"
    );
    for rejected in &m[3..6] {
        assert_eq!(rejected["eligible"], false);
        assert_eq!(rejected["status"], "unknown");
        assert_eq!(rejected["reason"], "not probed: not eligible");
        assert_eq!(rejected["availability"], "not_eligible");
    }
    // A mandatory feature satisfies the requirement.
    assert_eq!(m[6]["eligible"], true, "{:#}", m[6]);
    assert_eq!(m[6]["availability"], "down");

    let outcome = &v["outcome"];
    assert_eq!(outcome["action"], "remote", "{outcome:#}");
    assert_eq!(outcome["machine"], up.as_str());
    assert_eq!(
        outcome["fails_first"],
        serde_json::json!(["ssh://nosuch.invalid"])
    );
    assert_eq!(
        v["summary"],
        serde_json::json!({"total": 7, "eligible": 4, "ready": 1})
    );
    assert_eq!(v["local"]["possible"], false, "{:#}", v["local"]);

    // The same, for a person.
    let r = explain(&[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("Build: x86_64-linux with features kvm\n"),
        "{}",
        r.stdout
    );
    for needle in [
        "(rbtop-explain-cli)",
        "  full.invalid: full: 1 of 1 slots busy here, so Nix skips it",
        "Nix would first try nosuch.invalid (down)",
        "Nix would build on localhost (",
    ] {
        assert_says(&r.stdout, needle);
    }
}

#[test]
fn with_nothing_eligible_it_says_so_and_exits_1() {
    let sb = Sandbox::new("rbtop-explain");
    sb.write(
        "nixconf/nix.conf",
        "system = x86_64-linux\nsystem-features = benchmark\n",
    );
    let r = rbtop(
        &sb,
        &[
            "--builders",
            "ssh://b1.invalid aarch64-linux",
            "explain",
            "--system",
            "riscv64-linux",
            "--features",
            "kvm,benchmark",
            "--no-probe",
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_says(
        &r.stdout,
        "No machine is eligible for riscv64-linux with features benchmark,kvm.",
    );
    assert_says(&r.stdout, "the build fails");
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let sb = Sandbox::new("rbtop-explain");
    let builders = ["--builders", "ssh://b1.invalid"];
    let with = |args: &[&str]| rbtop(&sb, &[&builders[..], args].concat());

    let neither = with(&["explain"]);
    assert_eq!(neither.code, 2, "{}", neither.stderr);
    assert_says(&neither.stderr, "--system");

    let both = with(&["explain", "/x.drv", "--system", "x86_64-linux"]);
    assert_eq!(both.code, 2, "{}", both.stderr);

    let features_alone = with(&["explain", "/x.drv", "--features", "kvm"]);
    assert_eq!(features_alone.code, 2, "{}", features_alone.stderr);

    let missing = sb.path("missing.drv");
    let r = with(&["explain", missing.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_says(&r.stderr, &format!("cannot read {}: ", missing.display()));

    let not_drv = sb.write("not.drv", "{\"hello\": 1}\n");
    let r = with(&["explain", not_drv.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_says(
        &r.stderr,
        &format!("{} is not a derivation: ", not_drv.display()),
    );
}
