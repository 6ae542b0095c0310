//! The full log of a job on disk, whatever the in-memory cap: one file per
//! job under `$XDG_STATE_HOME/rbtop/jobs`, named by start time and target.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::job::JobId;

pub(super) struct LogFile {
    path: PathBuf,
    writer: BufWriter<File>,
    failed: bool,
    /// Nix's stderr as it came (internal-json records and all), beside the
    /// log while the build runs: what another rbtop follows (the log file
    /// itself holds lines as shown, not Nix's records). Removed at the end.
    records: Option<Records>,
}

struct Records {
    path: PathBuf,
    writer: BufWriter<File>,
    failed: bool,
}

impl LogFile {
    pub(super) fn create(
        dir: &Path,
        id: JobId,
        what: &str,
        argv: &[String],
    ) -> Result<LogFile, String> {
        crate::private_directory(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let now = chrono::Local::now();
        let stem = format!(
            "{}-{}-{}",
            now.format("%Y%m%d-%H%M%S"),
            id.0,
            file_name_part(what)
        );
        let (path, file) = create_new(dir, &stem)?;
        // `STEM.log` → `STEM.json` (`STEM.2.json` beside `STEM.2.log`).
        let records_path = path.with_extension("json");
        let records = match open_new(&records_path) {
            Ok(file) => Some(Records {
                path: records_path,
                writer: BufWriter::new(file),
                failed: false,
            }),
            Err(e) => {
                tracing::warn!(path = %records_path.display(), "no copy of Nix's records to follow: {e}");
                None
            }
        };
        let mut log = LogFile {
            path,
            writer: BufWriter::new(file),
            failed: false,
            records,
        };
        log.write_line(&format!("# rbtop job {id}, started {}", now.to_rfc3339()));
        log.write_line(&format!("# {}", shell_words::join(argv)));
        Ok(log)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The copy of Nix's stderr another rbtop can follow, while it exists.
    pub(super) fn records_path(&self) -> Option<&Path> {
        self.records.as_ref().map(|r| r.path.as_path())
    }

    /// One line of Nix's stderr, as it came, into the copy.
    pub(super) fn write_record(&mut self, line: &str) {
        if let Some(records) = &mut self.records
            && !records.failed
            && let Err(e) = writeln!(records.writer, "{line}")
        {
            tracing::error!(path = %records.path.display(), "cannot write Nix's records: {e}");
            records.failed = true;
        }
    }

    /// The build is over: the copy goes (a reader still holding it open
    /// reads it to its end all the same).
    pub(super) fn remove_records(&mut self) {
        if let Some(records) = self.records.take() {
            let _ = std::fs::remove_file(&records.path);
        }
    }

    pub(super) fn write_line(&mut self, line: &str) {
        if self.failed {
            return;
        }
        if let Err(e) = writeln!(self.writer, "{line}") {
            tracing::error!(path = %self.path.display(), "cannot write the job log: {e}");
            self.failed = true;
        }
    }

    pub(super) fn flush(&mut self) {
        if !self.failed {
            let _ = self.writer.flush();
        }
        if let Some(records) = &mut self.records
            && !records.failed
        {
            let _ = records.writer.flush();
        }
    }
}

/// `STEM.log`, or `STEM.2.log`, `STEM.3.log`… when taken: two rbtops
/// started in the same second both number their first job 1, and neither
/// may truncate the other's log.
fn create_new(dir: &Path, stem: &str) -> Result<(PathBuf, File), String> {
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.log")
        } else {
            format!("{stem}.{n}.log")
        };
        let path = dir.join(name);
        match open_new(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(format!(
        "cannot create a log file {stem}.N.log in {}: all taken",
        dir.display()
    ))
}

/// However the job ends (a failed spawn included), the copy of Nix's
/// records goes with it; the log stays.
impl Drop for LogFile {
    fn drop(&mut self) {
        self.remove_records();
    }
}

/// A new file only its owner reads: a build's log can hold secrets.
fn open_new(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A target as a safe file-name fragment: `nixpkgs#hello` → `nixpkgs-hello`.
fn file_name_part(what: &str) -> String {
    let base = what.rsplit('/').next().unwrap_or(what);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "build".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_contents() {
        assert_eq!(file_name_part("nixpkgs#hello"), "nixpkgs-hello");
        assert_eq!(file_name_part("/nix/store/abc-x.drv"), "abc-x.drv");
        assert_eq!(file_name_part("///"), "build");
        let dir = tempfile::tempdir().unwrap();
        // A directory left 0755 by an older rbtop is tightened.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut log = LogFile::create(
            dir.path(),
            JobId(3),
            "a.nix",
            &["nix".into(), "build".into()],
        )
        .unwrap();
        log.write_line("hello");
        log.flush();
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(text.contains("# rbtop job #3"), "{text}");
        assert!(text.ends_with("# nix build\nhello\n"), "{text}");
        assert!(
            log.path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("-3-a.nix.log")
        );
        // A build's log can hold secrets: only its owner reads it.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
        // Nix's records, as they came, beside it until the build ends.
        let records = log.records_path().unwrap().to_path_buf();
        assert_eq!(records, log.path().with_extension("json"));
        log.write_record(r#"@nix {"action":"msg","level":0,"msg":"x"}"#);
        log.flush();
        assert_eq!(
            std::fs::read_to_string(&records).unwrap(),
            "@nix {\"action\":\"msg\",\"level\":0,\"msg\":\"x\"}\n"
        );
        assert_eq!(mode(&records), 0o600);
        log.remove_records();
        assert!(!records.exists());
        assert!(log.records_path().is_none());
        // Dropped (the job's task ended, however): its copy goes too.
        let other = LogFile::create(dir.path(), JobId(4), "b.nix", &["nix".into()]).unwrap();
        let other_records = other.records_path().unwrap().to_path_buf();
        assert!(other_records.exists());
        drop(other);
        assert!(!other_records.exists());
        // Same job number in the same second: a file of its own.
        let second = LogFile::create(dir.path(), JobId(3), "a.nix", &["nix".into()]).unwrap();
        assert_ne!(second.path(), log.path());
        assert_eq!(
            std::fs::read_to_string(log.path()).unwrap(),
            text,
            "untouched"
        );
    }
}
