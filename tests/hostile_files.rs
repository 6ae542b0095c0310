//! Hostile and odd files as machines files, includes and nix.conf: special
//! files (devices, FIFOs, directories), symlink loops, include chains deep
//! enough to overflow the stack, fan-outs of includes and huge single lines.
//! Each is a located error naming what and where; none hangs, none crashes
//! (a stack overflow aborts past the panic hook and leaves the terminal raw).

use std::fs;
use std::path::{Path, PathBuf};

use rbtop::diagnostics::Origin;
use rbtop::machines::{MachinesText, Parsed, Parser};
use rbtop::nixconf::NixConfEnv;
use rbtop::sources::{SourceChoice, resolve};

fn parse_file(path: &Path) -> Parsed {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_file(path);
    parser.finish()
}

fn parse(text: &str) -> Parsed {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish()
}

fn messages(parsed: &Parsed) -> Vec<String> {
    parsed.diagnostics.iter().map(|d| d.render()).collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn special_files_as_machines_files_are_errors_naming_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for (path, kind) in [
        (PathBuf::from("/dev/zero"), "a character device"),
        (fifo.clone(), "a FIFO"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        // Named with --machines, and as an @include: both refused, not read.
        for parsed in [
            parse_file(&path),
            parse(&format!("ssh://kept ; @{}", path.display())),
        ] {
            let all = messages(&parsed);
            assert!(
                all.iter().any(|m| m.starts_with("error:")
                    && m.contains(&format!("{} is {kind}, not a regular file", path.display()))),
                "{path:?}: {all:#?}"
            );
        }
    }
    assert_eq!(
        parse(&format!("ssh://kept ; @{}", fifo.display()))
            .machines
            .len(),
        1
    );
}

#[test]
fn a_symlink_loop_is_called_a_loop_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let all = messages(&parse_file(&a));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(all[0].contains("is a symlink loop"), "{all:#?}");
    assert!(!all[0].contains("does not exist"), "{all:#?}");
}

#[test]
fn an_include_chain_of_4000_files_stops_at_the_bound_with_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let file = |i: usize| dir.path().join(format!("m{i}"));
    for i in 0..4000 {
        fs::write(file(i), format!("ssh://h{i}\n@{}\n", file(i + 1).display())).unwrap();
    }
    let parsed = parse_file(&file(0));
    let limit = rbtop::bounds::INCLUDE_DEPTH.limit;
    assert_eq!(parsed.machines.len(), limit, "the first {limit} files read");
    let errors: Vec<String> = parsed.errors().map(|d| d.render()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("a chain of includes is longer than rbtop's bound of 64 files deep")
    );
    assert!(
        errors[0].contains(&format!("{} →", file(0).display())),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains(&format!("→ {}", file(limit).display())),
        "{}",
        errors[0]
    );
}

#[test]
fn a_fan_out_of_includes_stops_at_the_total_bound() {
    // Each file includes the next twice, 41 deep: 2^41 reads without a bound.
    let dir = tempfile::tempdir().unwrap();
    let file = |i: usize| dir.path().join(format!("f{i}"));
    for i in 0..41 {
        let next = file(i + 1).display().to_string();
        fs::write(file(i), format!("@{next}\n@{next}\n")).unwrap();
    }
    fs::write(file(41), "ssh://leaf\n").unwrap();
    let parsed = parse_file(&file(0));
    let errors: Vec<String> = parsed.errors().map(|d| d.render()).collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.contains("the includes read is longer than rbtop's bound of 1024 files")),
        "{errors:#?}"
    );
    assert!(!parsed.machines.is_empty());
}

fn nix_conf_env(etc: &Path) -> NixConfEnv {
    NixConfEnv {
        conf_dir: etc.to_path_buf(),
        user_files: Vec::new(),
        nix_config: None,
    }
}

#[test]
fn nix_conf_includes_8000_deep_stop_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    fs::write(
        etc.join("nix.conf"),
        "builders = ssh://top\ninclude c0.conf\n",
    )
    .unwrap();
    for i in 0..8000 {
        fs::write(
            etc.join(format!("c{i}.conf")),
            format!("include c{}.conf\n", i + 1),
        )
        .unwrap();
    }
    let r = resolve(&SourceChoice::NixConf, &nix_conf_env(etc), None);
    let errors: Vec<String> = r.parsed.errors().map(|d| d.render()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("bound of 64 files deep"),
        "{}",
        errors[0]
    );
    assert_eq!(r.parsed.machines.len(), 1);
}

#[test]
fn nix_conf_including_a_device_or_fifo_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    mkfifo(&etc.join("fifo.conf"));
    fs::write(
        etc.join("nix.conf"),
        "include /dev/zero\ninclude fifo.conf\nbuilders = ssh://after\n",
    )
    .unwrap();
    let r = resolve(&SourceChoice::NixConf, &nix_conf_env(etc), None);
    let all: Vec<String> = r.parsed.diagnostics.iter().map(|d| d.render()).collect();
    assert!(
        all.iter()
            .any(|m| m.contains("/dev/zero is a character device")),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|m| m.contains("fifo.conf is a FIFO")),
        "{all:#?}"
    );
    assert_eq!(r.parsed.machines.len(), 1, "the lines after are applied");
}
