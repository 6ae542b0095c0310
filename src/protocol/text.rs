//! Making peer-supplied text safe to show: Nix colours its error messages
//! (`path '\e[35;1m/x\e[0m' is not in the Nix store`), and shell banners may too.

/// Removes ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL/ST`,
/// two-byte `ESC x`) and other control characters except tab and newline.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, up to a final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The first non-empty line, decoded lossily, without colour codes, trimmed.
pub(crate) fn first_line(bytes: &[u8]) -> Option<String> {
    let text = strip_ansi(&String::from_utf8_lossy(bytes));
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_nix_colours() {
        assert_eq!(
            strip_ansi("path '\x1b[35;1m/not/a/store/path\x1b[0m' is not in the Nix store"),
            "path '/not/a/store/path' is not in the Nix store"
        );
    }

    #[test]
    fn strips_osc_and_controls() {
        assert_eq!(
            strip_ansi("a\x1b]0;title\x07b\r\x00c\x1b]2;t\x1b\\d"),
            "abcd"
        );
    }

    #[test]
    fn first_line_skips_blank_lines_and_carriage_returns() {
        assert_eq!(
            first_line(b"\r\n  \r\nsh: 1: nix-store: not found\r\nmore").as_deref(),
            Some("sh: 1: nix-store: not found")
        );
        assert_eq!(first_line(b"\n\n"), None);
        assert_eq!(first_line(b"\xffhi\n").as_deref(), Some("\u{fffd}hi"));
    }
}
