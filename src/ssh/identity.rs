//! Which identity ssh will offer a builder: `ssh -G` with the same options
//! (column #3 as `-i`, `NIX_SSHOPTS`, the account's ssh_config) lists the
//! identity files; ssh tries those that exist, in that order.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::argv;
use super::options::SshSettings;
use super::target::SshTarget;
use crate::machines::Machine;

/// The identity files ssh would try for `machine`, existing ones only, in
/// ssh's order; `home` expands `~` (the account whose view this is).
pub async fn identities(
    machine: &Machine,
    settings: &SshSettings,
    home: &Path,
) -> Result<Vec<PathBuf>, String> {
    let target = SshTarget::of(machine)?
        .ok_or_else(|| format!("{} is not reached over SSH", machine.uri()))?;
    let output = tokio::process::Command::new(&settings.program)
        .args(argv::resolve_identity_args(&target, settings))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run ssh -G: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ssh -G could not resolve '{}': {}",
            target.host,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(
        identity_files(&String::from_utf8_lossy(&output.stdout), home)
            .into_iter()
            .filter(|path| path.is_file())
            .collect(),
    )
}

/// `identityfile` lines of an `ssh -G` dump, `~` expanded.
fn identity_files(dump: &str, home: &Path) -> Vec<PathBuf> {
    dump.lines()
        .filter_map(|line| line.strip_prefix("identityfile "))
        .map(|file| match file.trim().strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(file.trim()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_are_read_in_order_with_home_expanded() {
        let dump = "user root\nidentityfile /keys/b1\nidentityfile ~/.ssh/id_ed25519\nport 22\n";
        assert_eq!(
            identity_files(dump, Path::new("/root")),
            [
                PathBuf::from("/keys/b1"),
                PathBuf::from("/root/.ssh/id_ed25519")
            ]
        );
    }
}
