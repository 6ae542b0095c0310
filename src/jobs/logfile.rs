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
        let mut log = LogFile {
            path,
            writer: BufWriter::new(file),
            failed: false,
        };
        log.write_line(&format!("# rbtop job {id}, started {}", now.to_rfc3339()));
        log.write_line(&format!("# {}", shell_words::join(argv)));
        Ok(log)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
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
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
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
