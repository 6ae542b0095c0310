//! Nix's own notion of whitespace, shared by the machines and nix.conf readers.

/// The characters Nix's `tokenizeString` and `trim` treat as whitespace.
pub const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// Trim Nix whitespace from both ends.
pub fn trim(s: &str) -> &str {
    s.trim_matches(WHITESPACE)
}

/// Whitespace-separated words with their byte offsets in `s`.
pub fn words(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain([(s.len(), ' ')]) {
        match (WHITESPACE.contains(&c), start) {
            (true, Some(s0)) => {
                out.push((s0, &s[s0..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// `s` without ANSI escape sequences: Nix colours store paths and `error:`
/// in its messages, which must not get in the way of matching them.
pub fn strip_ansi(s: &str) -> String {
    if !s.contains('\x1b') {
        return s.to_string();
    }
    strip_ansi_escapes::strip_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_offsets_across_tabs_and_runs_of_spaces() {
        assert_eq!(words(" a\t\tbc  d\r"), vec![(1, "a"), (4, "bc"), (8, "d")]);
        assert!(words(" \t ").is_empty());
    }

    #[test]
    fn unicode_spaces_are_not_nix_whitespace() {
        assert_eq!(words("a\u{a0}b"), vec![(0, "a\u{a0}b")]);
        assert_eq!(trim("\u{a0}x "), "\u{a0}x");
    }
}
