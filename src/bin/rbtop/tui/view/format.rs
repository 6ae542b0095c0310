//! Short text for table cells: latencies, sizes, loads, ages.

use std::time::{Duration, SystemTime};

use humansize::{BINARY, format_size};

/// `40µs`, `3.1ms`, `12ms`, `1.2s`: short, and
/// never `0.0ms` for a fast local store.
pub fn latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{}µs", d.as_micros())
    } else if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1e3)
    }
}

/// `12.3 GiB`.
pub fn bytes(n: u64) -> String {
    format_size(n, BINARY.decimal_places(1))
}

/// `3d 4h`, `2h 5m`, `42s`: the two largest units.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// Local wall-clock time of day, `10:32:05`.
pub fn clock(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(at)
        .format("%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_short() {
        assert_eq!(latency(Duration::from_micros(260)), "260µs");
        assert_eq!(latency(Duration::from_micros(3140)), "3.1ms");
        assert_eq!(latency(Duration::from_millis(87)), "87ms");
        assert_eq!(latency(Duration::from_millis(1234)), "1.2s");
        assert_eq!(bytes(13_207_024_435), "12.3 GiB");
        assert_eq!(
            age(Duration::from_secs(3 * 86_400 + 4 * 3600 + 59)),
            "3d 4h"
        );
        assert_eq!(age(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(age(Duration::from_secs(42)), "42s");
    }
}
