//! What Nix's messages mean, read from their text (colours stripped): which
//! are errors, which derivation's own failure one reports, and the build
//! plan. Level 0 alone says nothing: a Nix client logs every message its
//! daemon forwards at level 0, warnings and chatter included
//! (nix-reference §7).
//!
//! The failure forms are the ones nix-output-monitor also trusts
//! (`NOM/Parser.hs`); a summary naming several derivations (`build of 'A',
//! 'B' failed`) or a dependency's failure (`Cannot build 'X'. Reason: 1
//! dependency failed.`) is not a failure of the derivations it names.

use super::record::{LEVEL_ERROR, Level};

/// What one of Nix's messages is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// `error: …`: something failed.
    Error,
    /// `warning: …` (at any level): never a failure.
    Warning,
    /// Anything else, daemon chatter at level 0 included.
    Info,
}

/// Classify one message (`plain`: without ANSI colours).
pub fn message_kind(level: Level, plain: &str) -> MessageKind {
    let text = plain.trim_start();
    if text.starts_with("warning:") {
        return MessageKind::Warning;
    }
    if text.starts_with("error:") {
        return MessageKind::Error;
    }
    match level {
        // `warn()` always writes `warning:`; a level-1 message without it
        // is still Nix warning about something.
        1 => MessageKind::Warning,
        // Level 0 without `error:`: forwarded by a daemon (`linking …`).
        LEVEL_ERROR => MessageKind::Info,
        _ => MessageKind::Info,
    }
}

/// One derivation's own failure, as a message reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnFailure<'t> {
    pub drv: &'t str,
    /// The builder's exit code when the message gives it.
    pub exit_code: Option<i32>,
}

/// The derivation whose own build this message says failed, if it is one
/// of Nix's forms for that:
/// - `builder for '<drv>' failed with exit code N`;
/// - `build of '<drv>' on '<host>' failed: …` (a remote build);
/// - `Cannot build '<drv>'.` + `Reason: builder failed with exit code N.` (≥ 2.29);
/// - `hash mismatch in fixed-output derivation '<drv>':`;
/// - `building of '<drv>' timed out …` / `… took longer than …`.
pub fn own_failure(plain: &str) -> Option<OwnFailure<'_>> {
    let text = plain.trim_start();
    let text = text.strip_prefix("error:").unwrap_or(text).trim_start();
    if let Some(rest) = text.strip_prefix("build of ") {
        // `build of 'A' on 'H' failed`: one derivation on one host. The
        // summary `build of 'A', 'B' failed` has no ` on `.
        let (drv, after) = quoted(rest)?;
        let after = after.strip_prefix(" on ")?;
        let (_host, after) = quoted(after)?;
        after.strip_prefix(" failed")?;
        return Some(OwnFailure {
            drv,
            exit_code: exit_code_in(after),
        });
    }
    if let Some(rest) = text.strip_prefix("builder for ") {
        let (drv, after) = quoted(rest)?;
        after.strip_prefix(" failed")?;
        return Some(OwnFailure {
            drv,
            exit_code: exit_code_in(after),
        });
    }
    if let Some(rest) = text.strip_prefix("Cannot build ") {
        let (drv, after) = quoted(rest)?;
        let reason = after.split_once("Reason:")?.1.trim_start();
        // `1 dependency failed.` is someone else's failure.
        reason.strip_prefix("builder failed")?;
        return Some(OwnFailure {
            drv,
            exit_code: exit_code_in(reason),
        });
    }
    if let Some(rest) = text.strip_prefix("hash mismatch in fixed-output derivation ") {
        let (drv, _) = quoted(rest)?;
        return Some(OwnFailure {
            drv,
            exit_code: None,
        });
    }
    if let Some(rest) = text.strip_prefix("building of ") {
        let (drv, after) = quoted(rest)?;
        if after.contains("timed out") || after.contains("took longer than") {
            return Some(OwnFailure {
                drv,
                exit_code: None,
            });
        }
    }
    None
}

/// The derivations of a build plan: `these N derivations will be built:`
/// (also `this derivation …`, `these derivations …`) starts one, and each
/// `  /nix/store/….drv` line after it is one of them.
pub fn plan_header(plain: &str) -> bool {
    let text = plain.trim_end();
    text == "this derivation will be built:"
        || text == "these derivations will be built:"
        || text
            .strip_prefix("these ")
            .and_then(|rest| rest.strip_suffix(" derivations will be built:"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A plan line: two spaces, then a `.drv` store path.
pub fn plan_entry(plain: &str) -> Option<&str> {
    let path = plain.strip_prefix("  ")?.trim_end();
    (path.starts_with('/') && path.ends_with(".drv") && !path.contains(char::is_whitespace))
        .then_some(path)
}

/// Activity 111's text for a content-addressed derivation resolved to
/// another: `resolved derivation: 'A' -> 'B'`. Not a wait.
pub fn resolved_derivation(plain: &str) -> Option<(&str, &str)> {
    let rest = plain.strip_prefix("resolved derivation: ")?;
    let (from, after) = quoted(rest)?;
    let (to, _) = quoted(after.strip_prefix(" -> ")?)?;
    Some((from, to))
}

/// `'x'…` → (`x`, the rest after the closing quote).
fn quoted(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('\'')?;
    let end = rest.find('\'')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// The number after the last `exit code ` in `text`.
fn exit_code_in(text: &str) -> Option<i32> {
    let (_, rest) = text.rsplit_once("exit code ")?;
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/00000000000000000000000000000000-a.drv";

    #[test]
    fn warnings_at_level_zero_are_warnings() {
        let daemon = "warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user";
        assert_eq!(message_kind(0, daemon), MessageKind::Warning);
        assert_eq!(
            message_kind(0, "error: builder for 'x' failed"),
            MessageKind::Error
        );
        assert_eq!(
            message_kind(0, "linking '/nix/store/x' to '/nix/store/.links/y'"),
            MessageKind::Info
        );
        assert_eq!(message_kind(1, "something odd"), MessageKind::Warning);
        assert_eq!(
            message_kind(3, "these 3 derivations will be built:"),
            MessageKind::Info
        );
    }

    #[test]
    fn own_failure_forms() {
        let exit = format!("error: builder for '{A}' failed with exit code 1;");
        assert_eq!(
            own_failure(&exit),
            Some(OwnFailure {
                drv: A,
                exit_code: Some(1)
            })
        );
        let remote = format!(
            "error: build of '{A}' on 'ssh://b1' failed: builder for '{A}' failed with exit code 3"
        );
        assert_eq!(own_failure(&remote).unwrap().exit_code, Some(3));
        let new = format!(
            "error: Cannot build '{A}'.\n       Reason: builder failed with exit code 2.\n       Output paths:\n         /nix/store/x-a"
        );
        assert_eq!(
            own_failure(&new),
            Some(OwnFailure {
                drv: A,
                exit_code: Some(2)
            })
        );
        let hash = format!("error: hash mismatch in fixed-output derivation '{A}':");
        assert_eq!(own_failure(&hash).unwrap().drv, A);
        let timeout = format!("error: building of '{A}' timed out after 10 seconds of silence");
        assert_eq!(own_failure(&timeout).unwrap().drv, A);
    }

    #[test]
    fn summaries_and_dependency_failures_are_not_own_failures() {
        let summary = format!("error: build of '{A}', '/nix/store/b-b.drv' failed");
        assert_eq!(own_failure(&summary), None);
        let one = format!("error: build of '{A}' failed");
        assert_eq!(own_failure(&one), None);
        let dependency = format!("error: Cannot build '{A}'.\n       Reason: 1 dependency failed.");
        assert_eq!(own_failure(&dependency), None);
        assert_eq!(own_failure("error: unexpected end-of-file"), None);
    }

    #[test]
    fn build_plans() {
        assert!(plan_header("these 3 derivations will be built:"));
        assert!(plan_header("this derivation will be built:"));
        assert!(plan_header("these derivations will be built:"));
        assert!(!plan_header(
            "these 3 paths will be fetched (1 MiB download):"
        ));
        assert_eq!(plan_entry(&format!("  {A}")), Some(A));
        assert_eq!(plan_entry("  /nix/store/x-source"), None);
        assert_eq!(plan_entry(A), None);
    }

    #[test]
    fn resolved_derivations() {
        assert_eq!(
            resolved_derivation(
                "resolved derivation: '/nix/store/a-x.drv' -> '/nix/store/b-x.drv'"
            ),
            Some(("/nix/store/a-x.drv", "/nix/store/b-x.drv"))
        );
        assert_eq!(
            resolved_derivation("waiting for lock on '/nix/store/a'"),
            None
        );
    }
}
