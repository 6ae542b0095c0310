//! The local Nix version, where behaviour differs between releases.

use std::fmt;
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NixVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl NixVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        NixVersion {
            major,
            minor,
            patch,
        }
    }

    /// The last `X.Y[.Z...]` word of a `--version` line such as
    /// `nix-store (Nix) 2.8.0` or `nix (Determinate Nix 3.6.2) 2.29.0`: vendors
    /// put their own version first, Nix's comes last.
    pub fn parse(text: &str) -> Option<Self> {
        text.split_whitespace().rev().find_map(|word| {
            let mut parts = word.trim_matches(|c: char| !c.is_ascii_digit()).split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts
                .next()
                .and_then(|p| {
                    let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                })
                .unwrap_or(0);
            Some(NixVersion::new(major, minor, patch))
        })
    }

    /// `nix-store --version` of the Nix on PATH, if any.
    pub fn local() -> Option<Self> {
        Self::parse(&local_version_line()?)
    }
}

/// Whether a `--version` line is Lix's: `nix-store (Lix, like Nix) 2.93.0`.
pub fn is_lix(version_line: &str) -> bool {
    version_line.contains("(Lix")
}

/// The local Nix's version and whether it is Lix, from one `nix-store --version`.
pub fn local_with_flavour() -> (Option<NixVersion>, bool) {
    match local_version_line() {
        Some(line) => (NixVersion::parse(&line), is_lix(&line)),
        None => (None, false),
    }
}

fn local_version_line() -> Option<String> {
    let out = Command::new("nix-store").arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl fmt::Display for NixVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_lines() {
        assert_eq!(
            NixVersion::parse("nix-store (Nix) 2.8.0\n"),
            Some(NixVersion::new(2, 8, 0))
        );
        assert_eq!(
            NixVersion::parse("nix (Nix) 2.31.0pre20250801_abc"),
            Some(NixVersion::new(2, 31, 0))
        );
        assert_eq!(
            NixVersion::parse("nix (Determinate Nix 3.6.2) 2.29.0"),
            Some(NixVersion::new(2, 29, 0))
        );
        assert_eq!(NixVersion::parse("no version here"), None);
        assert!(NixVersion::new(2, 8, 0) < NixVersion::new(2, 31, 0));
    }
}
