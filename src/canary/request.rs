//! The canary derivation and the request that builds it pinned to one
//! machine, exactly as `rbtop build --on` pins (its machines line verbatim,
//! `--max-jobs 0`).
//!
//! The derivation needs nothing from anywhere: `/bin/sh` as builder, no
//! inputs, so nothing is copied or substituted and the build tests the
//! builder alone; a nonce makes its output new every time, so it is never
//! already valid. The expression is a constant; what varies (system,
//! nonce, features) goes in as `--argstr`, never spliced into Nix code.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::jobs::launch::{BuildTool, LaunchRequest, Placement};
use crate::machines::Machine;

/// The canary's derivation name (its output is `/nix/store/<hash>-rbtop-canary`).
pub const NAME: &str = "rbtop-canary";

const EXPRESSION: &str = r#"{ system, nonce, features }:
derivation {
  name = "rbtop-canary";
  inherit system nonce;
  builder = "/bin/sh";
  args = [ "-c" "echo $nonce > $out" ];
  requiredSystemFeatures =
    builtins.filter (f: builtins.isString f && f != "") (builtins.split "," features);
}"#;

/// The socket of the nix-daemon serving this machine, if one is there.
pub fn daemon_socket() -> Option<PathBuf> {
    let path = match std::env::var_os("NIX_DAEMON_SOCKET_PATH") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("NIX_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/nix/var/nix"))
            .join("daemon-socket/socket"),
    };
    is_socket(&path).then_some(path)
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A value never used before by this or another rbtop.
pub fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:x}-{:x}-{:x}",
        now.as_nanos(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The features the canary requires: the machine's mandatory ones, so that
/// Nix may choose it at all (a mandatory feature must be required).
fn features(machine: &Machine) -> String {
    machine.mandatory_features.join(",")
}

/// The environment that sends a Nix client to the daemon. Not `--option
/// store daemon`: a trusted client's settings reach the daemon and its
/// build hook, which would then copy the outputs back through the daemon
/// into the very build that waits for them (a deadlock, seen with 2.8).
pub const VIA_DAEMON_ENV: (&str, &str) = ("NIX_REMOTE", "daemon");

/// The build of one canary on `machine`: `nix-build --no-out-link` (no GC
/// root left), pinned to the machine's line. (Through the daemon or not is
/// the job's environment: [`VIA_DAEMON_ENV`].)
pub fn launch_request(machine: &Machine, nonce: &str) -> LaunchRequest {
    // An empty systems column means the local system, as Nix reads it;
    // the parser has filled it in already.
    let system = machine
        .systems
        .first()
        .cloned()
        .unwrap_or_else(crate::system::native);
    let mut args: Vec<String> = vec!["-E".into(), EXPRESSION.into()];
    for (name, value) in [
        ("system", system),
        ("nonce", nonce.to_string()),
        ("features", features(machine)),
    ] {
        args.extend(["--argstr".into(), name.into(), value]);
    }
    // The output is new by construction: asking binary caches for it only
    // costs time (retries when they are unreachable) and tests nothing.
    args.extend(["--option".into(), "substitute".into(), "false".into()]);
    LaunchRequest {
        args,
        placement: Placement::pinned(machine),
        tool: BuildTool::NixBuildLegacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::testing::machine;

    #[test]
    fn the_request_pins_the_line_verbatim_and_passes_values_as_arguments() {
        let m = machine("ssh://b1 x86_64-linux,aarch64-linux - 2 1 kvm big AAAA");
        let argv = launch_request(&m, "n1").argv(None).unwrap();
        assert_eq!(argv[..2], ["nix-build", "--no-out-link"]);
        let at = |flag: &str| argv.iter().position(|a| a == flag).unwrap();
        assert_eq!(argv[at("-E") + 1], EXPRESSION);
        assert_eq!(argv[at("--builders") + 1], m.line);
        assert_eq!(argv[at("--max-jobs") + 1], "0");
        let argstr: Vec<&str> = argv
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--argstr")
            .flat_map(|(i, _)| [argv[i + 1].as_str(), argv[i + 2].as_str()])
            .collect();
        // The first system as the parser keeps them (sorted, as Nix's set).
        assert_eq!(
            argstr,
            ["system", &m.systems[0], "nonce", "n1", "features", "big"]
        );
        let options: Vec<&[String]> = argv
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "--option")
            .map(|(i, _)| &argv[i + 1..i + 3])
            .collect();
        // Nothing that the daemon would pass on to its build hook.
        assert_eq!(options, [["substitute", "false"]]);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
