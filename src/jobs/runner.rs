//! Runs jobs: spawns the Nix command, feeds its output to the [`Job`] state
//! machine, and carries out the effects it asks for (signals, timers, the
//! check on builders, the log file). One task per job; readers (the TUI,
//! `rbtop build`) look at the shared [`Job`] when told it changed.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::bounds::INTERNAL_JSON_LINE;
use tokio::sync::{mpsc, oneshot};

use super::elsewhere::{FoundLog, LogFormat};
use super::job::{CleanupReport, Event, Graces, Job, JobEffect, JobId, Signal};
use super::launch::LaunchRequest;
use super::logfile::LogFile;
use super::process_tree::{self, Process};
use super::remote;
use crate::machines::Machine;
use crate::nix_version::NixVersion;
use crate::ssh::SshSettings;

/// Default time without a log line after which a job shows as stalled.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(600);

/// What the supervisor needs to run jobs (the build tool comes with each
/// request; the stall limit is for whoever shows the jobs).
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub graces: Graces,
    pub line_cap: usize,
    /// Where log files go; `None` for `$XDG_STATE_HOME/rbtop/jobs`.
    pub log_dir: Option<PathBuf>,
    pub ssh: SshSettings,
    pub local_nix: Option<NixVersion>,
    /// Set in the Nix command's environment (e.g. `NIX_REMOTE=daemon`: a
    /// client-only choice, where `--option store` would also be handed to
    /// the daemon and on to its build hook).
    pub env: Vec<(String, String)>,
}

impl JobSettings {
    pub fn log_dir(&self) -> Option<PathBuf> {
        self.log_dir
            .clone()
            .or_else(|| crate::state_directory().map(|d| d.join("jobs")))
    }
}

/// A job shared between its task and its readers.
pub type SharedJob = Arc<Mutex<Job>>;

/// Lock a job; a reader that panicked while holding it left plain data.
pub fn lock(job: &SharedJob) -> MutexGuard<'_, Job> {
    job.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct JobHandle {
    pub id: JobId,
    pub job: SharedJob,
    cancel: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

pub struct Supervisor {
    settings: Arc<JobSettings>,
    machines: Arc<Vec<Machine>>,
    jobs: Vec<JobHandle>,
    next_id: u64,
    changed: mpsc::UnboundedSender<JobId>,
}

impl Supervisor {
    /// The receiver says which job changed, once per change.
    pub fn new(
        settings: JobSettings,
        machines: Vec<Machine>,
    ) -> (Supervisor, mpsc::UnboundedReceiver<JobId>) {
        let (changed, receiver) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            settings: Arc::new(settings),
            machines: Arc::new(machines),
            jobs: Vec::new(),
            next_id: 1,
            changed,
        };
        (supervisor, receiver)
    }

    pub fn jobs(&self) -> &[JobHandle] {
        &self.jobs
    }

    pub fn job(&self, id: JobId) -> Option<&SharedJob> {
        self.jobs.iter().find(|h| h.id == id).map(|h| &h.job)
    }

    /// Start a job (within a Tokio runtime). Fails only when the request
    /// makes no command line; a command that cannot run is a failed job.
    pub fn launch(&mut self, request: LaunchRequest) -> Result<JobId, String> {
        let argv = request.argv(self.settings.local_nix)?;
        let id = JobId(self.next_id);
        self.next_id += 1;
        let now = Instant::now();
        let mut job = Job::new(
            id,
            request,
            argv.clone(),
            self.settings.line_cap,
            self.settings.graces,
            now,
        );
        let log_file = self
            .settings
            .log_dir()
            .ok_or_else(|| "no state directory for the log file".to_string())
            .and_then(|dir| LogFile::create(&dir, id, &job.request.what(), &argv));
        let log_file = match log_file {
            Ok(file) => {
                job.log_file = Some(file.path().to_path_buf());
                Some(file)
            }
            Err(e) => {
                tracing::warn!("job {id}: no log file: {e}");
                // No file to write the note to: the effects have nowhere to go.
                let _ = job.note(format!("rbtop: no log file: {e}"), now);
                None
            }
        };
        tracing::info!(%id, ?argv, log = ?job.log_file, "launching build");
        let job = Arc::new(Mutex::new(job));
        let (cancel, cancelled) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervise(
            Arc::clone(&job),
            argv,
            log_file,
            Arc::clone(&self.machines),
            Arc::clone(&self.settings),
            self.changed.clone(),
            cancelled,
        ));
        self.jobs.push(JobHandle {
            id,
            job,
            cancel,
            task,
        });
        Ok(id)
    }

    /// Follow the internal-json log in `path` as a read-only job (the
    /// dashboard's `--open-log`): read to its end, nothing to cancel.
    pub fn open_log(&mut self, path: PathBuf) -> JobId {
        let name = path.display().to_string();
        self.read_only_job(&name, LogSource::File(path))
    }

    /// Follow the log of a build started elsewhere on this machine (found
    /// with [`super::elsewhere::find`]) while its writer runs.
    pub fn follow_log(&mut self, found: FoundLog) -> JobId {
        // The path came from another process: shown only sanitised.
        let name = crate::sanitize::for_terminal(&found.path.display().to_string()).into_owned();
        self.read_only_job(&name, LogSource::Followed(found))
    }

    fn read_only_job(&mut self, name: &str, source: LogSource) -> JobId {
        let id = JobId(self.next_id);
        self.next_id += 1;
        let job = Job::reading(id, name, self.settings.line_cap, Instant::now());
        tracing::info!(%id, ?source, "following a build log");
        let job = Arc::new(Mutex::new(job));
        let (cancel, cancelled) = mpsc::unbounded_channel();
        let task = tokio::spawn(read_log(
            Arc::clone(&job),
            source,
            self.changed.clone(),
            cancelled,
        ));
        self.jobs.push(JobHandle {
            id,
            job,
            cancel,
            task,
        });
        id
    }

    /// Ask a job to stop; asking again skips the current grace period. A
    /// log being read cannot be cancelled (`false`).
    pub fn cancel(&self, id: JobId) -> bool {
        self.jobs
            .iter()
            .find(|h| h.id == id)
            .filter(|h| !lock(&h.job).read_only)
            .is_some_and(|h| h.cancel.send(()).is_ok())
    }

    pub fn active(&self) -> usize {
        self.jobs
            .iter()
            .filter(|h| lock(&h.job).is_active())
            .count()
    }

    /// Ask every running job to stop (asked again: its next step at once);
    /// returns how many were running.
    pub fn cancel_all(&self) -> usize {
        let active: Vec<&JobHandle> = self
            .jobs
            .iter()
            .filter(|handle| lock(&handle.job).is_active())
            .collect();
        for handle in &active {
            let _ = handle.cancel.send(());
        }
        active.len()
    }

    /// Cancel every running job and wait until each has finished (with its
    /// builders checked): quitting must leave nothing running.
    pub async fn shutdown(&mut self) {
        self.cancel_all();
        for handle in self.jobs.drain(..) {
            let _ = handle.task.await;
        }
    }
}

/// Reads lines as bytes (a builder may print anything), lossily decoded,
/// each cut at [`INTERNAL_JSON_LINE`] (a build printing without a newline
/// must not grow memory without end). The one line reader for a build's
/// output and for a log read by `rbtop log` or `--open-log`, so both get the
/// same treatment of what comes in.
pub struct Lines<R> {
    reader: BufReader<R>,
    buffer: Vec<u8>,
    /// Bytes of the current line were dropped past the bound.
    cut: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            buffer: Vec::new(),
            cut: false,
        }
    }

    /// The next line, without its newline. Cancel-safe (it runs in a
    /// `select!`): bytes of a line cut short stay in the buffer, and the
    /// next call goes on from them.
    pub async fn next(&mut self) -> Option<String> {
        self.read(true).await
    }

    /// The next whole line: at the end of what is there now, `None`, a
    /// partial line kept for the next call (a file still being written).
    pub async fn next_whole(&mut self) -> Option<String> {
        self.read(false).await
    }

    async fn read(&mut self, take_partial: bool) -> Option<String> {
        loop {
            // The only await; what follows it runs to the end or not at all.
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(e) => {
                    tracing::warn!("cannot read the build's output: {e}");
                    return None;
                }
            };
            if available.is_empty() {
                if !take_partial || (self.buffer.is_empty() && !self.cut) {
                    return None;
                }
                return Some(self.take_line());
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..=at], true),
                None => (available, false),
            };
            let room = INTERNAL_JSON_LINE.limit.saturating_sub(self.buffer.len());
            self.buffer
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.cut |= chunk.len() > room;
            let consumed = chunk.len();
            self.reader.consume(consumed);
            if done {
                return Some(self.take_line());
            }
        }
    }

    fn take_line(&mut self) -> String {
        let mut line = std::mem::take(&mut self.buffer);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let mut text = String::from_utf8(line)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if std::mem::take(&mut self.cut) {
            tracing::warn!("{}: cut", INTERNAL_JSON_LINE.exceeded());
            text.push_str(&format!(
                " [rbtop: cut here, {}]",
                INTERNAL_JSON_LINE.exceeded()
            ));
        }
        text
    }
}

/// How long output may keep coming after Nix exited (a leftover child can
/// hold the pipes open; it is not waited for).
const DRAIN: Duration = Duration::from_secs(2);
/// The log file is flushed at least this often while a job runs.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

struct Context {
    job: SharedJob,
    id: JobId,
    log_file: Option<LogFile>,
    changed: mpsc::UnboundedSender<JobId>,
    timer: Option<(super::job::Escalation, Pin<Box<tokio::time::Sleep>>)>,
    /// Every process seen under the job when it was signalled.
    started: Vec<Process>,
    /// Nix itself, until reaped.
    root: Option<Process>,
    reaped: bool,
    check: Option<oneshot::Receiver<Vec<CleanupReport>>>,
    machines: Arc<Vec<Machine>>,
    settings: Arc<JobSettings>,
    finished: bool,
}

impl Context {
    fn apply(&mut self, event: Event) {
        let effects = lock(&self.job).handle(event, Instant::now());
        for effect in effects {
            self.carry_out(effect);
        }
        let _ = self.changed.send(self.id);
    }

    fn carry_out(&mut self, effect: JobEffect) {
        match effect {
            JobEffect::Write(line) => {
                if let Some(file) = &mut self.log_file {
                    file.write_line(&line);
                }
            }
            JobEffect::Signal { pgid, signal } => {
                self.remember_processes();
                let number = match signal {
                    Signal::Interrupt => libc::SIGINT,
                    Signal::Terminate => libc::SIGTERM,
                    Signal::Kill => libc::SIGKILL,
                };
                // Once Nix is reaped its pid may be another's: what it left
                // is ended through the processes recorded while it lived.
                if self.reaped {
                    return;
                }
                tracing::info!(id = %self.id, pgid, ?signal, "signalling the job's process group");
                match libc::pid_t::try_from(pgid) {
                    // SAFETY: killpg(2) with a group id and a signal number touches no memory.
                    Ok(pgid) if pgid > 1 => unsafe {
                        libc::killpg(pgid, number);
                    },
                    _ => {
                        tracing::error!(id = %self.id, pgid, "refusing to signal this process group")
                    }
                }
            }
            JobEffect::KillStragglers => {
                self.remember_processes();
                let alive: Vec<Process> = self
                    .started
                    .iter()
                    .copied()
                    .filter(|p| process_tree::is_alive(*p))
                    .collect();
                let names: Vec<String> = alive.iter().map(|p| process_tree::describe(*p)).collect();
                let killed = process_tree::kill_all(&alive);
                if killed > 0 {
                    tracing::warn!(id = %self.id, ?names, "killed processes the job left behind");
                    let note =
                        format!("rbtop: killed {killed} local process(es) the build left behind");
                    let effects = lock(&self.job).note(note, Instant::now());
                    for effect in effects {
                        self.carry_out(effect);
                    }
                }
            }
            JobEffect::Arm { stage, after } => {
                self.timer = Some((stage, Box::pin(tokio::time::sleep(after))));
            }
            JobEffect::CheckBuilders(builds) => {
                let (send, receive) = oneshot::channel();
                let machines = Arc::clone(&self.machines);
                let settings = Arc::clone(&self.settings);
                tracing::info!(id = %self.id, ?builds, "checking builders after the cancel");
                tokio::spawn(async move {
                    let reports = remote::check_builders(builds, &machines, &settings.ssh).await;
                    let _ = send.send(reports);
                });
                self.check = Some(receive);
            }
            JobEffect::Finished => {
                self.finished = true;
                self.timer = None;
                if let Some(file) = &mut self.log_file {
                    file.flush();
                }
            }
        }
    }

    /// Add the job's current process tree to what a cancel must end (only
    /// while Nix itself is still the process that was started).
    fn remember_processes(&mut self) {
        if let Some(root) = self
            .root
            .filter(|r| !self.reaped && process_tree::is_alive(*r))
        {
            for process in process_tree::descendants(root.pid) {
                if !self.started.contains(&process) {
                    self.started.push(process);
                }
            }
        }
    }
}

async fn supervise(
    job: SharedJob,
    argv: Vec<String>,
    log_file: Option<LogFile>,
    machines: Arc<Vec<Machine>>,
    settings: Arc<JobSettings>,
    changed: mpsc::UnboundedSender<JobId>,
    mut cancelled: mpsc::UnboundedReceiver<()>,
) {
    let id = lock(&job).id;
    let mut cx = Context {
        job,
        id,
        log_file,
        changed,
        timer: None,
        started: Vec::new(),
        root: None,
        reaped: false,
        check: None,
        machines,
        settings,
        finished: false,
    };
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(cx.settings.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Another rbtop on this machine finds Nix's records from its process.
    if let Some(records) = cx.log_file.as_ref().and_then(LogFile::records_path) {
        command.env(super::elsewhere::LOG_VAR, records);
    }
    // SAFETY: setsid(2) and prctl(2) are async-signal-safe and touch no
    // memory of ours.
    unsafe {
        command.pre_exec(|| {
            // A session of its own, so also a process group of its own: a
            // terminal's Ctrl-C reaches rbtop, which decides; a cancel
            // signals Nix and all it runs in that group; and with no
            // controlling terminal, an ssh that would prompt (unknown host
            // key, passphrase) fails at once instead of stopping for ever
            // on a terminal that is not its own.
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // If rbtop itself is killed outright, Nix is interrupted as by a
            // cancel rather than left building unwatched. The signal follows
            // the thread that spawned the child: rbtop's runtime has one
            // thread, for its life.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            cx.apply(Event::SpawnFailed(e.to_string()));
            return;
        }
    };
    let Some(pid) = child.id() else {
        cx.apply(Event::SpawnFailed(
            "it exited before it could be watched".into(),
        ));
        return;
    };
    cx.root = process_tree::process(pid);
    cx.apply(Event::Spawned { pid });
    let mut stdout = child.stdout.take().map(Lines::new);
    let mut stderr = child.stderr.take().map(Lines::new);
    let mut exit: Option<std::process::ExitStatus> = None;
    let mut exit_applied = false;
    let mut drain_until: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    while !cx.finished {
        tokio::select! {
            line = next_line(&mut stderr) => match line {
                Some(line) => {
                    if let Some(file) = &mut cx.log_file {
                        file.write_record(&line);
                    }
                    cx.apply(Event::Stderr(line))
                }
                None => stderr = None,
            },
            line = next_line(&mut stdout) => match line {
                Some(line) => cx.apply(Event::Stdout(line)),
                None => stdout = None,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.unwrap_or_else(|e| {
                    tracing::error!(%id, "cannot wait for the build: {e}");
                    std::os::unix::process::ExitStatusExt::from_raw(1 << 8)
                }));
                cx.reaped = true;
                drain_until = Some(Box::pin(tokio::time::sleep(DRAIN)));
            }
            Some(()) = cancelled.recv() => cx.apply(Event::CancelRequested),
            _ = async { cx.timer.as_mut().expect("armed").1.as_mut().await }, if cx.timer.is_some() => {
                let (stage, _) = cx.timer.take().expect("armed");
                cx.apply(Event::GraceElapsed(stage));
            }
            reports = async { cx.check.as_mut().expect("checking").await }, if cx.check.is_some() => {
                cx.check = None;
                cx.apply(Event::BuildersChecked(reports.unwrap_or_default()));
            }
            _ = async { drain_until.as_mut().expect("exited").as_mut().await }, if drain_until.is_some() => {
                // Nix is gone but something still holds its pipes.
                stdout = None;
                stderr = None;
                drain_until = None;
            }
            _ = flush.tick() => {
                if let Some(file) = &mut cx.log_file {
                    file.flush();
                }
            }
        }
        if let Some(status) = exit
            && !exit_applied
            && stdout.is_none()
            && stderr.is_none()
        {
            exit_applied = true;
            use std::os::unix::process::ExitStatusExt;
            cx.apply(Event::Exited {
                code: status.code(),
                signal: status.signal(),
            });
        }
    }
    if let Some(file) = &mut cx.log_file {
        file.flush();
    }
}

/// Lines read from a log between two change notices while it keeps coming.
const LOG_BATCH: u32 = 1024;

/// Feed a log file to a read-only job until it ends (or rbtop quits, which
/// sends on `stop`): the same line reader as a build's output.
/// A log to read as a read-only job.
#[derive(Debug)]
enum LogSource {
    /// A file to read to its end (`--open-log`).
    File(PathBuf),
    /// A build's log, read while its writer runs.
    Followed(FoundLog),
}

/// How often a followed log is looked at again once its end is reached.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How long a followed log is still read after its writer ended: rbtop
/// writes its last notes (and flushes) just after Nix exits.
const FOLLOW_AFTER_EXIT: Duration = Duration::from_secs(3);

async fn read_log(
    job: SharedJob,
    source: LogSource,
    changed: mpsc::UnboundedSender<JobId>,
    mut stop: mpsc::UnboundedReceiver<()>,
) {
    use futures_util::FutureExt;
    let id = lock(&job).id;
    let ended = |why: Option<String>| {
        let now = Instant::now();
        let mut job = lock(&job);
        if let Some(why) = why {
            let _ = job.note(why, now);
        }
        let _ = job.handle(Event::InputEnded, now);
        drop(job);
        let _ = changed.send(id);
    };
    let (opened, follow) = match &source {
        // Off the runtime's thread: `--open-log` of a FIFO waits for its
        // writer without stopping the dashboard.
        LogSource::File(path) => (
            tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            None,
        ),
        // Opened without blocking, and checked to be a regular file.
        LogSource::Followed(found) => (
            super::elsewhere::open_checked(&found.path, found.owner).map(tokio::fs::File::from_std),
            Some(found),
        ),
    };
    let file = match opened {
        Ok(file) => file,
        Err(e) => return ended(Some(format!("rbtop: {e}"))),
    };
    // Nix's json-log-path records come without the prefix its stderr has.
    let prefix = follow.is_some_and(|f| f.format == LogFormat::NixJson);
    let mut writer_ended: Option<Instant> = None;
    let mut lines = Lines::new(file);
    let mut unsent = 0u32;
    loop {
        // Tell the dashboard before waiting, and every batch meanwhile.
        let next = match lines.next_whole().now_or_never() {
            Some(next) => next,
            None => {
                if unsent > 0 {
                    let _ = changed.send(id);
                    unsent = 0;
                }
                tokio::select! {
                    next = lines.next_whole() => next,
                    Some(()) = stop.recv() => break,
                }
            }
        };
        let line = match next {
            Some(line) => line,
            None => {
                let Some(found) = follow else { break };
                // The end for now: wait for more while the writer runs,
                // and a little after.
                if !found.writer.is_alive() {
                    let since = *writer_ended.get_or_insert_with(Instant::now);
                    if since.elapsed() >= FOLLOW_AFTER_EXIT {
                        break;
                    }
                }
                if unsent > 0 {
                    let _ = changed.send(id);
                    unsent = 0;
                }
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_POLL) => continue,
                    Some(()) = stop.recv() => break,
                }
            }
        };
        let line = if prefix && line.starts_with('{') {
            format!("@nix {line}")
        } else {
            line
        };
        let _ = lock(&job).handle(Event::Stderr(line), Instant::now());
        unsent += 1;
        if unsent >= LOG_BATCH {
            let _ = changed.send(id);
            unsent = 0;
        }
    }
    // A last line without its newline.
    if let Some(line) = lines.next().await {
        let _ = lock(&job).handle(Event::Stderr(line), Instant::now());
    }
    ended(None);
}

/// The next line of a pipe still open; never ready once it is closed.
async fn next_line<R: AsyncRead + Unpin>(lines: &mut Option<Lines<R>>) -> Option<String> {
    match lines {
        Some(lines) => lines.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A read cut short by another `select!` branch loses nothing.
    #[tokio::test]
    async fn lines_survive_cancelled_reads() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut lines = Lines::new(reader);
        writer.write_all(b"first half ").await.unwrap();
        let cut = tokio::time::timeout(Duration::from_millis(50), lines.next()).await;
        assert!(cut.is_err(), "no full line yet");
        writer
            .write_all(b"second half\n\xffbad utf8\nlast")
            .await
            .unwrap();
        drop(writer);
        assert_eq!(
            lines.next().await.as_deref(),
            Some("first half second half")
        );
        assert_eq!(lines.next().await.as_deref(), Some("\u{fffd}bad utf8"));
        assert_eq!(lines.next().await.as_deref(), Some("last"));
        assert_eq!(lines.next().await, None);
    }

    /// Output without a newline (a hostile build) is cut at the bound and
    /// the rest of that line dropped: memory stays flat, the next line is whole.
    #[tokio::test]
    async fn an_endless_line_is_cut_at_the_bound() {
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        let mut lines = Lines::new(reader);
        let feeder = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(4 * INTERNAL_JSON_LINE.limit / chunk.len()) {
                writer.write_all(&chunk).await.unwrap();
            }
            writer.write_all(b"\nnext\n").await.unwrap();
        });
        let first = lines.next().await.unwrap();
        assert!(
            first.len() < INTERNAL_JSON_LINE.limit + 200,
            "{}",
            first.len()
        );
        assert!(first.ends_with(&format!(
            "[rbtop: cut here, {}]",
            INTERNAL_JSON_LINE.exceeded()
        )));
        assert!(lines.buffer.capacity() <= 2 * INTERNAL_JSON_LINE.limit);
        assert_eq!(lines.next().await.as_deref(), Some("next"));
        feeder.await.unwrap();
    }

    /// Settings for jobs that only read logs.
    fn reading_settings() -> JobSettings {
        JobSettings {
            graces: Graces::default(),
            line_cap: 100,
            log_dir: None,
            ssh: SshSettings::new(Vec::new(), crate::ssh::HostKeyPolicy::Strict),
            local_nix: None,
            env: Vec::new(),
        }
    }

    /// A log started elsewhere (here Nix's json-log-path form, no `@nix `)
    /// is followed while its writer runs: a line written in two halves is
    /// read whole, later lines arrive, and it ends once the writer is gone.
    #[tokio::test]
    async fn a_followed_log_is_read_while_its_writer_runs() {
        use std::io::Write;
        let (mut supervisor, mut changed) = Supervisor::new(reading_settings(), Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nix.json");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut writer = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let process = process_tree::process(writer.id()).unwrap();
        let owner = crate::jobs::elsewhere::real_uid(
            &std::fs::read_to_string("/proc/self/status").unwrap(),
        )
        .unwrap();
        let id = supervisor.follow_log(FoundLog {
            path: path.clone(),
            format: LogFormat::NixJson,
            owner,
            writer: crate::jobs::elsewhere::Writer {
                pid: process.pid,
                start_time: process.start_time,
            },
        });
        let job = supervisor.job(id).unwrap().clone();
        let start = r#"{"action":"start","fields":["/nix/store/00000000000000000000000000000000-a.drv","ssh://b1",1,1],"id":5,"level":3,"text":"building","type":105}"#;
        let (first, second) = start.split_at(40);
        write!(file, "{first}").unwrap();
        file.flush().unwrap();
        tokio::time::sleep(FOLLOW_POLL * 3).await;
        assert!(lock(&job).progress.derivations().is_empty(), "half a line");
        writeln!(file, "{second}").unwrap();
        writeln!(
            file,
            r#"{{"action":"result","fields":["compiling"],"id":5,"type":101}}"#
        )
        .unwrap();
        file.flush().unwrap();
        let seen = |job: &SharedJob| {
            let job = lock(job);
            job.progress
                .derivations()
                .first()
                .is_some_and(|d| d.machine.as_deref() == Some("ssh://b1"))
        };
        let waited = Instant::now();
        while !seen(&job) {
            assert!(waited.elapsed() < Duration::from_secs(10), "never read");
            let _ = tokio::time::timeout(FOLLOW_POLL, changed.recv()).await;
        }
        assert!(!lock(&job).is_finished(), "its writer still runs");
        let _ = writer.kill();
        let _ = writer.wait();
        let waited = Instant::now();
        while !lock(&job).is_finished() {
            assert!(waited.elapsed() < Duration::from_secs(15), "never ended");
            let _ = tokio::time::timeout(FOLLOW_POLL, changed.recv()).await;
        }
        assert!(lock(&job).read_only);
    }

    /// `--open-log`: nom's recorded failing build, read to its end as a
    /// read-only job that refuses a cancel.
    #[tokio::test]
    async fn an_opened_log_is_read_to_its_end_and_cannot_be_cancelled() {
        use crate::jobs::job::{JobEnd, State};
        use crate::jobs::progress::DrvStatus;
        let (mut supervisor, mut changed) = Supervisor::new(reading_settings(), Vec::new());
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/others/nom/fail.stderr.json");
        let id = supervisor.open_log(path);
        assert!(!supervisor.cancel(id), "a log cannot be cancelled");
        let job = supervisor.job(id).unwrap().clone();
        while !lock(&job).is_finished() {
            changed.recv().await.expect("the reader sends changes");
        }
        let job = lock(&job);
        assert!(
            matches!(
                job.state,
                State::Finished(JobEnd::Failed { exit_code: 1, .. })
            ),
            "{:?}",
            job.state
        );
        let statuses: Vec<_> = job
            .progress
            .derivations()
            .iter()
            .map(|d| (d.name().to_string(), d.status.clone()))
            .collect();
        assert_eq!(statuses.len(), 3, "{statuses:?}");
        assert!(
            statuses
                .iter()
                .any(|(n, s)| n == "build-waiting" && *s == DrvStatus::Planned)
        );
    }
}
