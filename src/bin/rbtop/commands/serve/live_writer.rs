//! Keeps the live machines file on disk: rewritten (atomically) only when
//! its content changes, never replaced by an empty one, and loud when
//! every builder is down.

use std::path::{Path, PathBuf};

use rbtop::export::{LiveFile, LiveMachines, write_atomically};
use rbtop::machines::Machine;
use rbtop::probe::HostReport;

pub struct LiveWriter {
    path: PathBuf,
    header: String,
    live: LiveMachines,
    /// What the file holds, as rbtop last wrote it.
    written: Option<String>,
    all_down: bool,
}

impl LiveWriter {
    pub fn new(path: PathBuf, header: String, live: LiveMachines) -> LiveWriter {
        LiveWriter {
            path,
            header,
            live,
            written: None,
            all_down: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kept(&self, index: usize) -> Option<bool> {
        self.live.kept(index)
    }

    pub fn all_down(&self) -> bool {
        self.all_down
    }

    pub fn observe(&mut self, index: usize, report: &HostReport) {
        if self.live.observe(index, report) {
            let kept = if self.live.kept(index) == Some(true) {
                "kept"
            } else {
                "left out"
            };
            tracing::info!(host = index, status = %report.status, "live machines file: {kept}");
        }
    }

    /// Write the file if what it should hold has changed.
    pub fn write_if_changed(&mut self, machines: &[Machine]) {
        match self.live.render(machines, &self.header) {
            LiveFile::NotYet => {}
            LiveFile::AllDown => {
                if !self.all_down {
                    let kept = if self.written.is_some() || self.path.exists() {
                        "keeping its last content"
                    } else {
                        "not writing it"
                    };
                    tracing::error!(path = %self.path.display(), "every builder is down: {kept}");
                    say!(
                        "rbtop serve: EVERY BUILDER IS DOWN: {kept} in {} (with no builders Nix \
                         would build everything locally)",
                        self.path.display()
                    );
                }
                self.all_down = true;
            }
            LiveFile::Text(text) => {
                if self.all_down {
                    tracing::warn!("a builder is back: the live machines file follows again");
                    say!("rbtop serve: a builder is back up");
                }
                self.all_down = false;
                if self.written.as_deref() == Some(text.as_str()) {
                    return;
                }
                match write_atomically(&self.path, text.as_bytes()) {
                    Ok(()) => {
                        let kept = text.lines().filter(|l| !l.starts_with('#')).count();
                        tracing::info!(path = %self.path.display(), kept, "live machines file written");
                        self.written = Some(text);
                    }
                    Err(e) => {
                        // Tried again after the next probe.
                        tracing::error!(path = %self.path.display(), "cannot write the live machines file: {e}");
                        say!("rbtop serve: cannot write {}: {e}", self.path.display());
                    }
                }
            }
        }
    }
}
