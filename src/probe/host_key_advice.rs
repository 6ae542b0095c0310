//! What to do about a host key that ssh refused: the pinned and the
//! presented fingerprints and the exact fix for this machines line.
//!
//! ssh's own advice names the known-hosts file it was given, which for a
//! pinned key is rbtop's temporary file: useless to the operator, so it is
//! dropped (`without_temp_file_advice`) and this advice replaces it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

use crate::machines::{Machine, host_key};

/// The facts and the fix for one host whose key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKeyAdvice {
    /// `SHA256:…` of the key pinned in the machines line, when one is.
    pub pinned: Option<String>,
    /// `SHA256:…` of the key the host presented, as ssh reported it.
    pub presented: Option<String>,
    /// The key type ssh named (`ED25519`), used to ask `ssh-keyscan` for that type.
    pub presented_type: Option<String>,
    /// What to run and where to put it, one step a line.
    pub fix: Vec<String>,
}

/// `SHA256:<base64, no padding>` of a `<type> <blob>` key line, as
/// `ssh-keygen -l` prints it.
pub fn fingerprint(key_line: &str) -> Option<String> {
    let blob = key_line.split_whitespace().nth(1)?;
    let bytes = STANDARD.decode(blob).ok()?;
    Some(format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(&bytes))
    ))
}

/// The first `SHA256:…` fingerprint in ssh's stderr: the presented key's,
/// in both of OpenSSH's messages (changed key, unknown key).
fn presented_fingerprint(ssh_log: &str) -> Option<String> {
    ssh_log
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(|w| w.trim_end_matches('.').to_string())
}

/// `ED25519` from `The fingerprint for the ED25519 key sent by the remote host is`
/// or `ED25519 key fingerprint is SHA256:…`.
fn presented_type(ssh_log: &str) -> Option<String> {
    ssh_log.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.windows(2).position(|w| {
            w[1] == "key"
                && w[0]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
                && w[0].len() >= 3
        })?;
        Some(words[at].to_string())
    })
}

/// ssh-keyscan's `-t` name for ssh's upper-case type name.
fn keyscan_type(ssh_type: &str) -> &'static str {
    match ssh_type {
        "RSA" => "rsa",
        "ECDSA" => "ecdsa",
        "ED25519-SK" => "ed25519-sk",
        "ECDSA-SK" => "ecdsa-sk",
        _ => "ed25519",
    }
}

/// Advice for `machine`, whose key ssh refused with `ssh_log`.
pub fn advise(machine: &Machine, ssh_log: &str) -> HostKeyAdvice {
    let pin_field = machine.public_host_key.as_deref().or(machine
        .store
        .params
        .get("base64-ssh-public-host-key")
        .map(String::as_str));
    let pinned = pin_field
        .and_then(|f| host_key::pinned_key(f).ok())
        .and_then(|line| fingerprint(&line));
    let presented = presented_fingerprint(ssh_log);
    let presented_type = presented_type(ssh_log);
    let host = machine.host_name();
    let port = machine.store.port;
    let scan = format!(
        "ssh-keyscan{} -t {} {host}",
        port.map(|p| format!(" -p {p}")).unwrap_or_default(),
        keyscan_type(presented_type.as_deref().unwrap_or("ED25519"))
    );
    let check_first = "first check the new key's fingerprint on the builder itself: \
                       ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
        .to_string();
    let fix = if machine.public_host_key.is_some() {
        vec![
            check_first,
            format!(
                "then replace field 8 (the host key) of {} with the output of: \
                 {scan} 2>/dev/null | cut -d' ' -f2- | base64 -w0",
                machine.location
            ),
        ]
    } else if pin_field.is_some() {
        vec![
            check_first,
            format!(
                "then replace the URI's base64-ssh-public-host-key= in {} with the output of: \
                 {scan} 2>/dev/null | cut -d' ' -f2- | base64 -w0",
                machine.location
            ),
        ]
    } else {
        let name = match port {
            Some(p) => format!("[{host}]:{p}"),
            None => host.to_string(),
        };
        vec![
            check_first,
            format!(
                "then, for the account that connects (the nix-daemon's is root): \
                 ssh-keygen -R '{name}' && {scan} >> ~/.ssh/known_hosts"
            ),
        ]
    };
    HostKeyAdvice {
        pinned,
        presented,
        presented_type,
        fix,
    }
}

/// ssh's stderr without its advice about the known-hosts file it was given
/// (`Add correct host key in …`, `Offending … key in …`, `remove with:`,
/// `ssh-keygen -f … -R …`): for a pinned key that file is rbtop's own
/// temporary one, so the advice would be false.
pub fn without_temp_file_advice(ssh_log: &str) -> String {
    ssh_log
        .lines()
        .filter(|line| {
            let t = line.trim();
            !(t.starts_with("Add correct host key in")
                || t.starts_with("Offending ")
                || t == "remove with:"
                || t.starts_with("ssh-keygen -f "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Origin;
    use crate::machines::{MachinesText, Parser};

    /// A real ed25519 public key (the test fleet's kind of key).
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBc1OW1U6MX0ymFBnLw7ETlXInJ6JIlWhHnrTnDvK9ZB";

    fn machine(line: &str) -> Machine {
        let mut parser = Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&MachinesText::whole(
            line,
            Origin::file("/etc/nix/machines"),
        ));
        parser.finish().machines.remove(0)
    }

    const CHANGED: &str = "\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
The fingerprint for the ED25519 key sent by the remote host is
SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM.
Please contact your system administrator.
Add correct host key in /tmp/rbtop-Ab12/pinned_host_key to get rid of this message.
Offending ED25519 key in /tmp/rbtop-Ab12/pinned_host_key:1
  remove with:
  ssh-keygen -f \"/tmp/rbtop-Ab12/pinned_host_key\" -R \"[127.0.0.9]:2222\"
Host key for [127.0.0.9]:2222 has changed and you have requested strict checking.
Host key verification failed.";

    #[test]
    fn the_fingerprint_is_ssh_keygens() {
        // `ssh-keygen -lf` of KEY prints this fingerprint.
        assert_eq!(
            fingerprint(KEY).as_deref(),
            Some("SHA256:QuT7QRdgR5vOzaXYG1Tt8W5WilY0cCutuqcZEV1f8NQ")
        );
        assert_eq!(fingerprint("ssh-ed25519 !!!"), None);
    }

    #[test]
    fn a_pinned_line_gets_both_fingerprints_and_its_own_fix() {
        let pin = STANDARD.encode(format!("{KEY} root@b9\n"));
        let m = machine(&format!(
            "ssh://root@127.0.0.9:2222 x86_64-linux - 2 1 - - {pin}\n"
        ));
        let advice = advise(&m, CHANGED);
        assert_eq!(advice.pinned, fingerprint(KEY));
        assert_eq!(
            advice.presented.as_deref(),
            Some("SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM")
        );
        assert_eq!(advice.presented_type.as_deref(), Some("ED25519"));
        let fix = advice.fix.join("\n");
        assert!(
            fix.contains("field 8 (the host key) of /etc/nix/machines:1"),
            "{fix}"
        );
        assert!(
            fix.contains(
                "ssh-keyscan -p 2222 -t ed25519 127.0.0.9 2>/dev/null | cut -d' ' -f2- | base64 -w0"
            ),
            "{fix}"
        );
        assert!(!fix.contains("/tmp/"), "{fix}");
    }

    #[test]
    fn an_unpinned_host_is_fixed_in_known_hosts() {
        let m = machine("ssh://root@b1 x86_64-linux\n");
        let advice = advise(&m, "Host key verification failed.\n");
        assert_eq!(advice.pinned, None);
        assert_eq!(advice.presented, None);
        let fix = advice.fix.join("\n");
        assert!(
            fix.contains("ssh-keygen -R 'b1' && ssh-keyscan -t ed25519 b1 >> ~/.ssh/known_hosts"),
            "{fix}"
        );
    }

    #[test]
    fn the_temp_file_advice_is_dropped_and_the_rest_kept() {
        let kept = without_temp_file_advice(CHANGED);
        assert!(!kept.contains("/tmp/rbtop"), "{kept}");
        assert!(!kept.contains("remove with"), "{kept}");
        assert!(kept.contains("SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM."));
        assert!(kept.ends_with("Host key verification failed."));
    }
}
