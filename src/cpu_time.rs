//! This process's own CPU time, for the log line that ends a check and for
//! the fleet benchmark: children (ssh) excluded, unlike `time(1)`.

use std::time::Duration;

/// CPU time used by this process so far. Linux: `/proc/self/schedstat`
/// (nanoseconds on CPU), else `/proc/self/stat` (clock ticks, assumed 100 Hz).
/// `None` where neither exists.
pub fn own() -> Option<Duration> {
    if let Ok(text) = std::fs::read_to_string("/proc/self/schedstat")
        && let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok())
    {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // utime and stime are fields 14 and 15.
    let fields = crate::proc_stat::fields_after_name(&stat)?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    #[test]
    fn grows_with_work() {
        let before = super::own().expect("Linux has /proc/self");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = super::own().unwrap();
        assert!(after > before, "{before:?} then {after:?}");
    }
}
