//! A job's log in memory: the newest lines up to a cap (the full log is in
//! the job's log file), each numbered so readers can tell what they missed.

use std::collections::VecDeque;

use super::progress::{LineKind, LogLine};
use crate::nix_text::strip_ansi;

#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// 0 for the job's first line, counting the ones no longer kept.
    pub seq: u64,
    pub drv: Option<usize>,
    pub kind: LineKind,
    /// As written, ANSI colours included.
    pub text: String,
}

#[derive(Debug)]
pub struct LogBuffer {
    lines: VecDeque<LogEntry>,
    cap: usize,
    next_seq: u64,
}

/// Lines kept per job unless configured otherwise.
pub const DEFAULT_LINE_CAP: usize = 10_000;

impl LogBuffer {
    pub fn new(cap: usize) -> LogBuffer {
        LogBuffer {
            lines: VecDeque::new(),
            cap: cap.max(1),
            next_seq: 0,
        }
    }

    pub fn push(&mut self, line: LogLine) -> u64 {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.lines.push_back(LogEntry {
            seq,
            drv: line.drv,
            kind: line.kind,
            text: line.text,
        });
        seq
    }

    /// Lines ever added.
    pub fn total(&self) -> u64 {
        self.next_seq
    }

    /// Lines dropped from memory to stay under the cap.
    pub fn dropped(&self) -> u64 {
        self.next_seq - self.lines.len() as u64
    }

    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &LogEntry> + ExactSizeIterator {
        self.lines.iter()
    }

    /// Entries with `seq` at or after `from`.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &LogEntry> {
        let first = self.lines.front().map_or(0, |e| e.seq);
        let skip = from.saturating_sub(first) as usize;
        self.lines.iter().skip(skip)
    }

    /// The lines of one derivation (`Some(index)`) or of the whole job.
    pub fn view(&self, drv: Option<usize>) -> Vec<&LogEntry> {
        self.lines
            .iter()
            .filter(|e| drv.is_none() || e.drv == drv)
            .collect()
    }

    /// The last `n` lines a builder printed for `drv` (or any derivation).
    pub fn last_build_lines(&self, drv: Option<usize>, n: usize) -> Vec<&str> {
        let mut lines: Vec<&str> = self
            .lines
            .iter()
            .rev()
            .filter(|e| e.kind == LineKind::Build && (drv.is_none() || e.drv == drv))
            .take(n)
            .map(|e| e.text.as_str())
            .collect();
        lines.reverse();
        lines
    }
}

/// Where `needle` next occurs in `view` (case-insensitive, colours ignored),
/// searching from the line after `from` (or before it, backwards), wrapping.
pub fn find(view: &[&LogEntry], needle: &str, from: usize, forward: bool) -> Option<usize> {
    if needle.is_empty() || view.is_empty() {
        return None;
    }
    let needle = needle.to_lowercase();
    let n = view.len();
    let matches = |i: usize| strip_ansi(&view[i].text).to_lowercase().contains(&needle);
    (1..=n)
        .map(|step| {
            if forward {
                (from + step) % n
            } else {
                (from + n * 2 - step) % n
            }
        })
        .find(|&i| matches(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(drv: Option<usize>, text: &str) -> LogLine {
        LogLine {
            drv,
            kind: LineKind::Build,
            text: text.to_string(),
        }
    }

    #[test]
    fn the_cap_drops_the_oldest_and_counts_them() {
        let mut log = LogBuffer::new(3);
        for i in 0..5 {
            log.push(line(None, &format!("l{i}")));
        }
        assert_eq!(log.total(), 5);
        assert_eq!(log.dropped(), 2);
        let texts: Vec<_> = log.entries().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["l2", "l3", "l4"]);
        let since: Vec<_> = log.since(3).map(|e| e.seq).collect();
        assert_eq!(since, [3, 4]);
        assert_eq!(log.since(0).count(), 3);
    }

    #[test]
    fn views_and_last_lines_per_derivation() {
        let mut log = LogBuffer::new(10);
        log.push(line(Some(0), "a1"));
        log.push(line(Some(1), "b1"));
        log.push(line(Some(0), "a2"));
        assert_eq!(log.view(Some(1)).len(), 1);
        assert_eq!(log.view(None).len(), 3);
        assert_eq!(log.last_build_lines(Some(0), 5), ["a1", "a2"]);
    }

    #[test]
    fn search_wraps_ignores_case_and_colour() {
        let mut log = LogBuffer::new(10);
        for text in ["one", "\x1b[31mTwo\x1b[0m", "three", "two again"] {
            log.push(line(None, text));
        }
        let view = log.view(None);
        assert_eq!(find(&view, "two", 0, true), Some(1));
        assert_eq!(find(&view, "two", 1, true), Some(3));
        assert_eq!(find(&view, "two", 3, true), Some(1));
        assert_eq!(find(&view, "two", 1, false), Some(3));
        assert_eq!(find(&view, "zzz", 0, true), None);
    }
}
