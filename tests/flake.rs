//! flake.nix cannot be evaluated offline (it fetches nixpkgs and
//! rust-overlay), but it must at least parse, and it must keep offering the
//! outputs that README.md and CONTRIBUTING.md promise.
//!
//! These tests need `nix-instantiate`; they fail, rather than skip, when it is
//! missing, so a broken flake can never go unnoticed.

use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `nix-instantiate --parse flake.nix` from the crate root.
fn parse_flake() -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let result = Command::new("nix-instantiate")
        .args(["--parse", "flake.nix"])
        .current_dir(root)
        // Parsing needs no store. A dummy one keeps the test independent of
        // a running nix-daemon or a writable /nix/var, neither of which exists
        // for an unprivileged user or inside the Nix build sandbox.
        .env("NIX_REMOTE", "dummy://")
        .output();
    match result {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "nix-instantiate is not on PATH: install the `nix-bin` package \
             (apt-get install nix-bin), or run the tests inside `nix develop`"
        ),
        Err(e) => panic!("could not run nix-instantiate: {e}"),
    }
}

/// Parses the flake and returns the printed AST, failing on a parse error.
fn parsed_flake() -> String {
    let output = parse_flake();
    assert!(
        output.status.success(),
        "`nix-instantiate --parse flake.nix` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("nix-instantiate printed non-UTF-8")
}

#[test]
fn flake_parses() {
    let ast = parsed_flake();
    assert!(!ast.trim().is_empty(), "nix-instantiate printed nothing");
}

#[test]
fn flake_defines_the_promised_outputs() {
    let ast = parsed_flake();
    // The AST is printed as Nix text; each output is built per system, which
    // tells it apart from same-named attributes inside (a shell's `packages`).
    for output in ["packages", "apps", "devShells", "checks"] {
        assert!(
            ast.contains(&format!("{output} = (forAllSystems")),
            "flake.nix defines no `{output}` output; parsed flake:\n{ast}"
        );
    }
}

/// Test files that start the loopback fleet.
const FLEET_TESTS: [&str; 8] = [
    "canary_fleet",
    "fleet_check",
    "dashboard_tui",
    "build_fleet",
    "triage_fleet",
    "hostile_fleet",
    "serve_fleet",
    "probe_cost_fleet",
];

#[test]
fn the_flake_check_runs_every_test_file_but_the_fleet() {
    // checks.default names its test targets; a new file under tests/ must be
    // added there, or `nix flake check` would silently stop running it.
    let flake = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("flake.nix"))
        .expect("flake.nix");
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(tests).expect("tests/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // The fleet needs root, namespaces and sshd: tests/run-all.sh runs
        // the tests that start one.
        let needs_fleet = FLEET_TESTS.contains(&name.as_str());
        let listed = flake.contains(&format!("\"{name}\""));
        assert_eq!(
            listed, !needs_fleet,
            "tests/{name}.rs: flake.nix's checks.default cargoTestFlags must list every test file except {FLEET_TESTS:?}"
        );
    }
}
