//! Whether the builder's nix-daemon trusts the SSH user of an `ssh://` store.
//!
//! The serve protocol (`nix-store --serve`) never says, so a user the daemon
//! does not trust looks up until the first build fails with "not privileged
//! to build". The worker protocol says it in its hello (≥1.35, Nix ≥2.15).
//! So the cold probe's one session, for `ssh://`, also has the facts script
//! run `nix-daemon --stdio` (found where the store command's `nix-store` is)
//! and feed it [`hello_format`]: rbtop's worker hello, sent in one write, and
//! an invalid op after which the daemon closes the connection. The script
//! relays the answer in hex (`daemon_hello=`, at most [`DAEMON_HELLO`]
//! bytes) in its report, before the store's handshake: no session and no
//! round trip more. The answer is read here with the same code as a hello
//! over the wire. Anything short of a hello with the trust field (no
//! `nix-daemon` there, an older protocol, no daemon running for a non-root
//! user, no GNU `tail` or `timeout` there) is `None`: unknown, never `false`.
//!
//! The hello cannot simply be piped in: Nix's stdio proxy (a non-root user)
//! exits when its input ends, before relaying the daemon's answer, and Nix
//! 2.26 as root stops with "interrupted by the user"; so the script keeps
//! the pipe open until the daemon has answered and closed (see facts.sh).

use crate::bounds::DAEMON_HELLO;
use crate::protocol::worker;

use super::route::program_words;

/// The report's line with the daemon's answer.
const REPORT_KEY: &str = "daemon_hello=";

/// What the facts script gives `nix-daemon --stdio`, as a printf format of
/// octal escapes only (no `%`, nothing from anywhere else): the worker hello
/// of [`worker::at_once_hello`], then op 0, which no Nix knows: the daemon
/// answers it with an error and closes, so `nix-daemon --stdio` ends without
/// its input ending first.
pub(crate) fn hello_format() -> String {
    let mut bytes = worker::at_once_hello();
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

/// The daemon's trust from the cold report's `daemon_hello=` line: `None`
/// without the line or when the bytes are not a hello with the trust field.
pub(crate) async fn from_report(report: &str) -> Option<bool> {
    let hex = report.lines().find_map(|l| l.strip_prefix(REPORT_KEY))?;
    let bytes = decode_hex(hex.trim())?;
    match worker::read_at_once_reply(&mut bytes.as_slice()).await {
        Ok(hello) => {
            if hello.trusted.is_none() {
                tracing::debug!(
                    "the daemon did not say whether it trusts us (worker protocol {})",
                    hello.version
                );
            }
            hello.trusted
        }
        Err(e) => {
            tracing::info!("daemon trust unknown: {e}");
            None
        }
    }
}

/// Two hex digits a byte, at most [`DAEMON_HELLO`] bytes (the script's own
/// bound; anything longer is not its output).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || hex.len() > 2 * DAEMON_HELLO.limit {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `nix-daemon --stdio [--store X]` for an `ssh://` store command whose
/// program is `nix-store` (by name or path: `/opt/nix/bin/nix-store` gives
/// `/opt/nix/bin/nix-daemon`; words before it, such as `env`, are kept).
/// `None` for any other program: a wrapper's daemon is not guessed.
pub(crate) fn daemon_command(store_command: &[String]) -> Option<Vec<String>> {
    let program = program_words(store_command);
    let (last, before) = program.split_last()?;
    let dir = last.strip_suffix("nix-store")?;
    if !(dir.is_empty() || dir.ends_with('/')) {
        return None;
    }
    let mut command: Vec<String> = before.to_vec();
    command.push(format!("{dir}nix-daemon"));
    command.push("--stdio".to_string());
    // `remote-store=X`: the trust of the store the builds would use.
    let flags = &store_command[program.len()..];
    if let Some(at) = flags.iter().position(|w| w == "--store")
        && let Some(store) = flags.get(at + 1)
    {
        command.extend(["--store".to_string(), store.clone()]);
    }
    Some(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `od -An -tx1` of Nix 2.26's answer gave on the test fleet
    /// (`uts1`, as a non-root user): magic, 1.38, "2.26.3", trust 2, LAST,
    /// then the error frame for op 0 (ERROR, "Error", ...), cut short here.
    const NIX_2_26_UNTRUSTED: &str = "6f6978640000000026010000000000000600000000000000322e32362e330000020000000000000073746c6100000000707478630000000005000000000000004572726f72000000";

    #[tokio::test]
    async fn the_relayed_hello_says_the_trust() {
        let report =
            format!("nix=\nload=0.1 0.1 0.1\n{REPORT_KEY}{NIX_2_26_UNTRUSTED}\nuptime_s=4\n");
        assert_eq!(from_report(&report).await, Some(false));
        let trusted = NIX_2_26_UNTRUSTED.replacen("330000020000", "330000010000", 1);
        assert_eq!(
            from_report(&format!("{REPORT_KEY}{trusted}\n")).await,
            Some(true)
        );
        // Nix 2.8 (1.34): no trust field.
        let nix_2_8 =
            "6f6978640000000022010000000000000500000000000000322e382e3000000073746c6100000000";
        assert_eq!(from_report(&format!("{REPORT_KEY}{nix_2_8}\n")).await, None);
    }

    #[tokio::test]
    async fn anything_but_a_whole_hello_is_unknown() {
        for line in [
            String::new(),                     // no line: not asked, or no GNU tail/timeout
            format!("{REPORT_KEY}\n"),         // no nix-daemon, or it failed
            format!("{REPORT_KEY}6f697864\n"), // cut inside the version
            format!("{REPORT_KEY}{}\n", &NIX_2_26_UNTRUSTED[..72]), // cut before the trust
            format!("{REPORT_KEY}7a7a7a7a7a7a7a7a\n"), // not the magic
            format!("{REPORT_KEY}6f69786\n"),  // odd
            format!("{REPORT_KEY}zz\n"),       // not hex
            format!("{REPORT_KEY}{}\n", "00".repeat(DAEMON_HELLO.limit + 1)),
        ] {
            assert_eq!(from_report(&line).await, None, "{line:?}");
        }
    }

    #[test]
    fn the_hello_format_is_octal_escapes_of_the_hello_and_op_0() {
        let format = hello_format();
        assert!(
            format.chars().all(|c| c == '\\' || c.is_ascii_digit()),
            "{format}"
        );
        let bytes: Vec<u8> = format
            .split('\\')
            .skip(1)
            .map(|o| u8::from_str_radix(o, 8).unwrap())
            .collect();
        let mut expected = worker::at_once_hello();
        expected.extend_from_slice(&[0; 8]);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 40);
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_daemon_is_found_where_nix_store_is() {
        let cases = [
            ("nix-store --serve --write", Some("nix-daemon --stdio")),
            (
                "/nix/var/nix/profiles/default/bin/nix-store --serve --write",
                Some("/nix/var/nix/profiles/default/bin/nix-daemon --stdio"),
            ),
            (
                "env nix-store --serve --write",
                Some("env nix-daemon --stdio"),
            ),
            (
                "nix-store --serve --write --store /mnt/store",
                Some("nix-daemon --stdio --store /mnt/store"),
            ),
            // Not nix-store: a wrapper, or another program that ends the same way.
            ("my-nix-wrapper --serve --write", None),
            ("/opt/not-nix-store --serve --write", None),
            ("--serve --write", None),
        ];
        for (store, daemon) in cases {
            assert_eq!(
                daemon_command(&words(store)),
                daemon.map(words),
                "store command {store:?}"
            );
        }
    }
}
