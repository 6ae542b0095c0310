//! The fleet for other tools: Prometheus metrics ([`metrics`]), the live
//! machines file that keeps only usable builders ([`live`]), and the
//! atomic write both use ([`write_atomically`]).

mod atomic;
pub mod live;
pub mod metrics;

pub use atomic::write_atomically;
pub use live::{Hysteresis, LiveFile, LiveMachines};
pub use metrics::{BuilderSample, FleetExtras, render as render_metrics};

/// One line of text from outside (ssh's stderr, a remote's answer) made
/// safe for a single-line comment or an HTML cell: control characters
/// (newlines included) become spaces, and it is cut at `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_removes_newlines_and_bounds_the_length() {
        assert_eq!(one_line("a\nb\r\x1b[31mc", 100), "a b  [31mc");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
