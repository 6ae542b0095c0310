//! Text from outside (builders' answers, machines and config files, Nix's
//! and ssh's messages, build logs) made safe for a terminal.
//!
//! A builder that rbtop connects to as root, or a hand-edited file, can hold
//! any byte. Written to a terminal as is, an escape sequence sets its title,
//! clears the screen or writes the clipboard (OSC 52). So every such string
//! goes through one of these on its way to a terminal:
//! - [`for_terminal`]: one line of text (a table cell, a message); every
//!   control character is shown visibly (`\x1b`, `\n`), never obeyed;
//! - [`for_terminal_lines`]: the same, but line breaks kept;
//! - [`for_build_log`]: a build's output, as `nix build -L` shows it: colour
//!   (SGR) kept, every other escape removed, as Nix's `filterANSIEscapes`
//!   does.
//!
//! JSON output does not go through here: serde escapes control characters,
//! and the JSON says exactly what was received.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters a terminal obeys or that reorder what is shown: C0, DEL, C1,
/// and the Unicode bidirectional controls (which can make `rm -rf /` read as
/// something else).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn escape_where(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of outside text for a terminal: every control character (line
/// breaks and tabs included) shown as `\x1b`, `\n`, `\t`… instead of obeyed.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape_where(s, |_| false)
}

/// Several lines of outside text: line breaks and tabs kept, every other
/// control character shown visibly.
pub fn for_terminal_lines(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c == '\n' || c == '\t')
}

/// A build's output as `nix build -L` shows it. Like Nix's
/// `filterANSIEscapes`: SGR sequences (`ESC [ … m`, colour) kept; every
/// other CSI, OSC (`ESC ] … BEL` or `ESC ] … ESC \`, e.g. OSC 52, the
/// clipboard), DCS/APC/PM strings and two-byte escapes removed; `\r` and
/// BEL dropped. Unlike Nix, the other control characters (backspace, C1,
/// bidirectional controls) are dropped too, not passed through. Line breaks
/// and tabs are kept.
pub fn for_build_log(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().expect("i is on a char boundary");
        if c != '\x1b' {
            if !is_unsafe(c) || c == '\n' || c == '\t' {
                out.push(c);
            }
            i += c.len_utf8();
            continue;
        }
        let start = i;
        i += 1;
        match bytes.get(i) {
            Some(b'[') => {
                i += 1;
                while bytes.get(i).is_some_and(|b| (0x30..=0x3f).contains(b)) {
                    i += 1;
                }
                while bytes.get(i).is_some_and(|b| (0x20..=0x2f).contains(b)) {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(b'm') => {
                        i += 1;
                        out.push_str(&s[start..i]);
                    }
                    Some(b) if (0x40..=0x7e).contains(b) => i += 1,
                    _ => {} // cut short: dropped, the rest is text
                }
            }
            // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (`ESC \`).
            Some(b']' | b'P' | b'X' | b'^' | b'_') => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        0x07 => {
                            i += 1;
                            break;
                        }
                        0x1b if bytes.get(i + 1) == Some(&b'\\') => {
                            i += 2;
                            break;
                        }
                        0x1b => break, // a new escape ends it
                        _ => i += 1,
                    }
                }
            }
            // Two-byte escapes (ESC c resets the terminal, ESC 7/8…).
            Some(b) if (0x20..=0x7e).contains(b) => i += 1,
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// Hostile strings (from builders, files, logs) that tests of every output
/// path push through, to see no escape reach the terminal.
#[doc(hidden)]
pub const HOSTILE: &[&str] = &[
    "name\x1b]0;TITLE\x07\x1b[2Jrest",
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "a\x1bPq#0;2;0;0;0#0~~@@\x1b\\b",
    "line\nforged: ok\r\x1b[1A",
    "bell\x07 bs\x08 del\x7f c1\u{9b}2J",
    "ssh://a\x1bb\n",
    "evil\u{202e}txt.sh",
    "\x1bc",
    "\x1b[",
    "\x1b]unterminated osc",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn has_escape(s: &str) -> bool {
        s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t')
    }

    #[test]
    fn for_terminal_leaves_no_control_character() {
        for s in HOSTILE {
            let shown = for_terminal(s);
            assert!(!shown.chars().any(is_unsafe), "{s:?} gave {shown:?}");
        }
        assert_eq!(
            for_terminal("a\x1b]0;T\x07\nb"),
            "a\\x1b]0;T\\x07\\nb",
            "shown, not obeyed, and one line"
        );
        assert_eq!(for_terminal("x\u{202e}y"), "x\\u{202e}y");
        assert!(matches!(for_terminal("plain é→"), Cow::Borrowed(_)));
    }

    #[test]
    fn for_terminal_lines_keeps_line_breaks_only() {
        assert_eq!(for_terminal_lines("a\n\tb\x1b[2J"), "a\n\tb\\x1b[2J");
        for s in HOSTILE {
            assert!(!has_escape(&for_terminal_lines(s)), "{s:?}");
        }
    }

    #[test]
    fn build_logs_keep_colour_and_lose_every_other_escape() {
        assert_eq!(
            for_build_log("\x1b[31;1merror\x1b[0m: x"),
            "\x1b[31;1merror\x1b[0m: x"
        );
        assert_eq!(for_build_log("a\x1b]52;c;Zm9v\x07b"), "ab", "OSC 52 (BEL)");
        assert_eq!(for_build_log("a\x1b]0;t\x1b\\b"), "ab", "OSC (ST)");
        assert_eq!(for_build_log("a\x1b[2J\x1b[?1049hb"), "ab", "CSI not SGR");
        assert_eq!(for_build_log("a\x1bPq~~\x1b\\b"), "ab", "DCS");
        assert_eq!(for_build_log("a\x1bcb"), "ab", "RIS");
        assert_eq!(for_build_log("50%\r100%\x07\n"), "50%100%\n");
        assert_eq!(for_build_log("c1\u{9b}2J\u{202e}x"), "c12Jx");
        assert_eq!(for_build_log("\x1b["), "");
        assert_eq!(for_build_log("x\x1b]0;never ends"), "x");
        for s in HOSTILE {
            let shown = for_build_log(s);
            let no_sgr = shown.replace("\x1b[", "");
            assert!(!has_escape(&no_sgr), "{s:?} gave {shown:?}");
            // What is left of an escape must be an SGR: `ESC [ params m`.
            for part in shown.split('\x1b').skip(1) {
                let params = part.strip_prefix('[').expect("CSI");
                let end = params.find('m').expect("SGR");
                assert!(params[..end].bytes().all(|b| (0x30..=0x3f).contains(&b)));
            }
        }
    }
}
