//! Every bound on what rbtop reads from outside, in one place: its value
//! and the words of the error past it. Files written by hand, builders
//! reached as root and build logs can all be hostile or broken; none may
//! make rbtop's memory grow without end, hang it, or overflow its stack (a
//! stack overflow aborts past the panic hook and leaves the terminal raw).
//! Past a bound, that file or that host fails with a message naming the
//! bound; the process goes on. SECURITY.md has the table for users.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// One bound: what it limits, and how much of it is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// What is limited, as the error says it ("a machines file").
    pub what: &'static str,
    pub limit: usize,
    /// "bytes", "levels", "files", …
    pub unit: &'static str,
}

impl Bound {
    /// `"a machines file is longer than rbtop's bound of 134217728 bytes"`.
    pub fn exceeded(&self) -> String {
        format!(
            "{} is longer than rbtop's bound of {} {}",
            self.what, self.limit, self.unit
        )
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.what, self.limit, self.unit)
    }
}

const MIB: usize = 1 << 20;

/// A machines file (`--machines`, `/etc/nix/machines`, an `@include`).
/// Large enough for a million-line fleet file.
pub const MACHINES_FILE: Bound = Bound {
    what: "a machines file",
    limit: 128 * MIB,
    unit: "bytes",
};
/// A nix.conf (or one of its includes).
pub const NIX_CONF_FILE: Bound = Bound {
    what: "a nix.conf file",
    limit: 16 * MIB,
    unit: "bytes",
};
/// rbtop's own config file.
pub const CONFIG_FILE: Bound = Bound {
    what: "rbtop's config file",
    limit: 16 * MIB,
    unit: "bytes",
};
/// A `.drv` file read by the explainer.
pub const DRV_FILE: Bound = Bound {
    what: "a .drv file",
    limit: 64 * MIB,
    unit: "bytes",
};
/// Nesting of `@file` includes in machines text, or of nix.conf includes.
/// Nix has none and crashes around a few thousand.
pub const INCLUDE_DEPTH: Bound = Bound {
    what: "a chain of includes",
    limit: 64,
    unit: "files deep",
};
/// Files read through includes in one resolution (a fan-out of includes,
/// each file including the next twice, is exponential otherwise).
pub const INCLUDES_READ: Bound = Bound {
    what: "the includes read",
    limit: 1024,
    unit: "files",
};
/// Nesting of lists and tuples in a `.drv` (Nix writes four levels).
pub const ATERM_DEPTH: Bound = Bound {
    what: "a .drv's nesting",
    limit: 256,
    unit: "levels",
};
/// A source line quoted under a diagnostic.
pub const SNIPPET: Bound = Bound {
    what: "a quoted line",
    limit: 240,
    unit: "characters",
};
/// Diagnostics about one line; past it, one says how many more there were.
pub const DIAGNOSTICS_PER_LINE: Bound = Bound {
    what: "the diagnostics about one line",
    limit: 20,
    unit: "diagnostics",
};
/// One line of a store's stderr (the rest of the line is dropped).
pub const STDERR_LINE: Bound = Bound {
    what: "a line of a store's stderr",
    limit: 4096,
    unit: "bytes",
};
/// The last lines of a store's stderr kept per channel (older ones are
/// dropped), for the failure's message.
pub const STDERR_KEPT: Bound = Bound {
    what: "the stderr kept of a store",
    limit: 20,
    unit: "lines",
};
/// A builder's answer to the facts script.
pub const FACTS_ANSWER: Bound = Bound {
    what: "a facts answer",
    limit: MIB,
    unit: "bytes",
};
/// A builder's answer to the process listing.
pub const LISTING_ANSWER: Bound = Bound {
    what: "a process listing",
    limit: 8 * MIB,
    unit: "bytes",
};
/// The bytes of a builder's nix-daemon hello the facts script relays (in
/// hex) for TRUSTED over ssh://: a hello is about a hundred.
pub const DAEMON_HELLO: Bound = Bound {
    what: "a daemon's hello relayed by the facts script",
    limit: 4096,
    unit: "bytes",
};
/// One string in Nix's serve or worker protocol (a version, a message).
pub const PROTOCOL_STRING: Bound = Bound {
    what: "a protocol string",
    limit: MIB,
    unit: "bytes",
};
/// One list in Nix's serve or worker protocol.
pub const PROTOCOL_LIST: Bound = Bound {
    what: "a protocol list",
    limit: 65_536,
    unit: "items",
};
/// The strings of one protocol list together (65,536 strings of 1 MiB
/// each would be 64 GiB).
pub const PROTOCOL_LIST_BYTES: Bound = Bound {
    what: "a protocol list's strings",
    limit: 16 * MIB,
    unit: "bytes",
};
/// One line of Nix's `--log-format internal-json` (longer lines are cut).
pub const INTERNAL_JSON_LINE: Bound = Bound {
    what: "an internal-json line",
    limit: MIB,
    unit: "bytes",
};

/// A `/proc/PID` file of another local process (its environment, its
/// command line), read to find a build's log.
pub const PROC_FILE: Bound = Bound {
    what: "a /proc file of another process",
    limit: 8 * MIB,
    unit: "bytes",
};

/// How much of a build log started elsewhere is searched for the
/// derivation a remote build is building (to tell several logs apart).
pub const LOG_SEARCH: Bound = Bound {
    what: "the part of a build log searched for a derivation",
    limit: 256 * MIB,
    unit: "bytes",
};

/// The answer of one of rbtop's other scripts on a builder (the builder
/// check's finder, the kill, the substituters' pings).
pub const SCRIPT_ANSWER: Bound = Bound {
    what: "a script's answer",
    limit: MIB,
    unit: "bytes",
};

/// Every bound, for SECURITY.md's table and its test.
pub const ALL: &[Bound] = &[
    MACHINES_FILE,
    NIX_CONF_FILE,
    CONFIG_FILE,
    DRV_FILE,
    INCLUDE_DEPTH,
    INCLUDES_READ,
    ATERM_DEPTH,
    SNIPPET,
    DIAGNOSTICS_PER_LINE,
    STDERR_LINE,
    STDERR_KEPT,
    FACTS_ANSWER,
    LISTING_ANSWER,
    SCRIPT_ANSWER,
    DAEMON_HELLO,
    PROTOCOL_STRING,
    PROTOCOL_LIST,
    PROTOCOL_LIST_BYTES,
    INTERNAL_JSON_LINE,
    PROC_FILE,
    LOG_SEARCH,
];

/// Why a file given by name could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {}: it does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{} is a symlink loop (or a chain of more than 40 symlinks)", path.display())]
    SymlinkLoop { path: PathBuf },
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: {}", path.display(), bound.exceeded())]
    TooLong { path: PathBuf, bound: Bound },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl FileError {
    pub fn is_missing(&self) -> bool {
        matches!(self, FileError::Missing { .. })
    }
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read a whole regular file of at most `bound` bytes. Opened without
/// blocking (so a FIFO cannot hang the open) and checked to be a regular
/// file before a byte is read: `/dev/zero`, a FIFO or a directory is an
/// error naming the path, never an endless read.
pub fn read_regular_file(path: &Path, bound: Bound) -> Result<Vec<u8>, FileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => FileError::Missing {
                path: path.to_path_buf(),
            },
            Some(libc::ELOOP) => FileError::SymlinkLoop {
                path: path.to_path_buf(),
            },
            _ => FileError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let io_error = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = file.metadata().map_err(io_error)?;
    let file_type = metadata.file_type();
    // `/dev/null` is the usual "nothing here" (Nix's own tests include it).
    if file_type.is_char_device()
        && std::os::unix::fs::MetadataExt::rdev(&metadata) == libc::makedev(1, 3)
    {
        return Ok(Vec::new());
    }
    if !file_type.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(file_type),
        });
    }
    let mut bytes = Vec::new();
    // One byte past the bound tells "exactly at" from "over" (and a file
    // growing while read cannot get past it).
    Read::take(file, bound.limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() > bound.limit {
        return Err(FileError::TooLong {
            path: path.to_path_buf(),
            bound,
        });
    }
    Ok(bytes)
}

/// Read one line (up to and including `\n`, or to the end) into `out`,
/// keeping at most `cap` bytes of it, so a peer writing without end cannot
/// grow memory. Past `cap`, with `drain` the rest of the line is read and
/// dropped (the next call starts at the next line); without, it returns at
/// once (the caller gives up on the stream). Returns the bytes consumed (0
/// at the end of the stream) and whether the line was cut.
pub(crate) async fn read_line_capped<R>(
    reader: &mut R,
    out: &mut Vec<u8>,
    cap: usize,
    drain: bool,
) -> io::Result<(usize, bool)>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let (mut consumed, mut cut) = (0, false);
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (chunk, done) = match memchr_newline(available) {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        cut |= chunk.len() > room;
        let n = chunk.len();
        reader.consume(n);
        consumed += n;
        if done || (cut && !drain) {
            return Ok((consumed, cut));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// `s` cut to at most `bound.limit` characters, with `…` where it was cut.
pub fn snippet(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(SNIPPET.limit) {
        None => std::borrow::Cow::Borrowed(s),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..at])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Bound = Bound {
        what: "a test file",
        limit: 4,
        unit: "bytes",
    };

    #[test]
    fn special_files_are_refused_by_type_not_read() {
        let devzero = read_regular_file(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            devzero.to_string(),
            "/dev/zero is a character device, not a regular file"
        );
        assert_eq!(
            read_regular_file(Path::new("/dev/null"), SMALL).unwrap(),
            b""
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular_file(dir.path(), SMALL).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory, not a regular file")
        );

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait for a writer forever.
        let err = read_regular_file(&fifo, SMALL).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("fifo is a FIFO, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn a_symlink_loop_is_not_called_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = read_regular_file(&a, SMALL).unwrap_err();
        assert!(matches!(err, FileError::SymlinkLoop { .. }), "{err}");
        let missing = read_regular_file(&dir.path().join("none"), SMALL).unwrap_err();
        assert!(missing.is_missing());
    }

    #[test]
    fn a_file_past_its_bound_is_refused_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abcd").unwrap();
        assert_eq!(read_regular_file(&path, SMALL).unwrap(), b"abcd");
        std::fs::write(&path, "abcde").unwrap();
        let err = read_regular_file(&path, SMALL).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(": a test file is longer than rbtop's bound of 4 bytes"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn capped_lines_keep_the_start_and_drop_the_rest() {
        let text = b"short\nthis line is long\nend";
        let mut reader = tokio::io::BufReader::with_capacity(4, &text[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 8, true)
                .await
                .unwrap(),
            (6, false)
        );
        assert_eq!(line, b"short\n");
        line.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 8, true)
                .await
                .unwrap(),
            (18, true)
        );
        assert_eq!(line, b"this lin");
        line.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 8, true)
                .await
                .unwrap(),
            (3, false)
        );
        line.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 8, true)
                .await
                .unwrap(),
            (0, false)
        );
    }

    /// SECURITY.md's table has a row for each bound, with its value.
    #[test]
    fn security_md_lists_every_bound_with_its_value() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md"));
        for bound in ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {}", bound.what)))
                .unwrap_or_else(|| panic!("no row for {bound}"));
            assert!(
                row.contains(&format!("| {} {} |", bound.limit, bound.unit)),
                "{bound} in {row}"
            );
        }
    }

    #[test]
    fn snippets_are_cut_with_a_mark() {
        assert_eq!(snippet("short"), "short");
        let long = "é".repeat(SNIPPET.limit + 10);
        let cut = snippet(&long);
        assert_eq!(cut.chars().count(), SNIPPET.limit + 1);
        assert!(cut.ends_with('…'));
    }
}
