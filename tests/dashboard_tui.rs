//! The live dashboard (`rbtop` with no command) end to end: the real binary,
//! typed into a shell in a real terminal (tmux), against the real loopback
//! fleet (tests/fleet/fleet.sh: Nix 2.8 and 2.26 builders and one host of
//! each fault). Every trial reads the screen with `tmux capture-pane` and
//! polls until what it expects is there or a generous deadline passes: no
//! sleep-and-hope, no wall-clock limits.
//!
//! One fleet serves every trial, so this binary has its own main
//! (libtest-mimic) that starts it first and always stops it. Each trial has its
//! own tmux server (`tmux -L rbtop-e2e-<pid>-<n>`), killed however the trial
//! ends. Needs root and tmux; fails, never skips, without them.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/triage.rs"]
mod triage;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleet::Fleet;
use fleet_trials::{
    builder_namespaces, ensure, processes_matching, processes_with_env, settle, settle_on,
};
use libtest_mimic::Failed;
use tempfile::TempDir;

const COLS: u16 = 120;
const ROWS: u16 = 30;
/// How long any one expected screen may take to appear. Generous: the
/// machine may be busy building; nothing here measures speed.
const DEADLINE: Duration = Duration::from_secs(30);
/// The shell's prompt in the terminal (`PS1`).
const PROMPT: &str = "e2e$";
/// The per-host probe limit given to rbtop: the hung host resolves to
/// `timeout` after this many seconds.
const PROBE_TIMEOUT: &str = "4";
/// The terminal-mode flags raw mode turns off; all are on in a fresh tmux pane.
const COOKED_FLAGS: [&str; 7] = ["icanon", "echo", "isig", "iexten", "icrnl", "ixon", "opost"];

/// The status word the dashboard shows for a fleet host of this kind.
fn expected_status(kind: &str) -> &'static str {
    match kind {
        "healthy" => "up",
        "refused" => "refused",
        "hung" => "timeout",
        "authfail" => "auth",
        "nonix" => "nonix",
        "wrongkey" => "hostkey",
        other => panic!("fleet host kind {other:?} has no expected status"),
    }
}

/// `(status word, host)` of every hosts-table row on the screen, top to
/// bottom: the lines that start with a status glyph.
fn table_rows(screen: &str) -> Vec<(String, String)> {
    screen
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let glyph = words.next()?;
            if !["●", "◌", "◷", "✗"].contains(&glyph) {
                return None;
            }
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// The hosts table's title line (` Hosts (9) sorted by ... `), if shown.
fn table_title(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.starts_with(" Hosts ("))
}

/// Text without its ANSI escape sequences, and whether any SGR sequence in
/// it set the selected row's highlight: background colour 237
/// (`style::selected`).
fn strip_ansi(raw: &str) -> (String, bool) {
    let mut text = String::new();
    let mut reverse = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            text.push(c);
            continue;
        }
        if chars.peek() != Some(&'[') {
            chars.next();
            continue;
        }
        chars.next();
        let mut params = String::new();
        for c in chars.by_ref() {
            if c.is_ascii_alphabetic() {
                if c == 'm' && params.contains("48;5;237") {
                    reverse = true;
                }
                break;
            }
            params.push(c);
        }
    }
    (text, reverse)
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest);
            !state.is_some_and(|s| s.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn single_quoted(s: &str) -> String {
    assert!(!s.contains('\''), "{s:?} has a single quote");
    format!("'{s}'")
}

static TERMINALS: AtomicUsize = AtomicUsize::new(0);

/// A terminal (a tmux server of its own, `COLS`x`ROWS`) running `sh` with
/// the prompt `PROMPT`, in an isolated environment: its own HOME, config,
/// state and runtime dir (where rbtop's ssh masters keep their sockets, so
/// leftovers can be counted) and its own copy of the fleet's machines file.
struct Terminal {
    socket: String,
    /// The server's socket file, removed with it (tmux leaves it behind).
    socket_path: Option<PathBuf>,
    dir: TempDir,
    machines: PathBuf,
    /// The rbtop process last started, while it may still run.
    rbtop: Option<u32>,
    /// The fleet hosts' mount namespaces (see `builder_namespaces`).
    builders: Vec<String>,
}

impl Terminal {
    fn open(fleet: &Fleet) -> Result<Terminal, Failed> {
        let socket = format!(
            "rbtop-e2e-{}-{}",
            std::process::id(),
            TERMINALS.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::Builder::new()
            .prefix("rbtop-dash")
            .tempdir()
            .unwrap();
        for sub in ["home", "config", "state", "run", "nixconf"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let machines = dir.path().join("machines");
        std::fs::copy(fleet.machines_file(), &machines).unwrap();
        let p = |sub: &str| single_quoted(&dir.path().join(sub).display().to_string());
        // The pane's shell gets only these variables (and tmux's TERM).
        let shell = format!(
            "exec env -i TERM=\"$TERM\" LANG=C.UTF-8 PATH={path} HOME={home} \
             XDG_CONFIG_HOME={config} XDG_STATE_HOME={state} XDG_RUNTIME_DIR={run} \
             NIX_CONF_DIR={nixconf} NIX_SSHOPTS={sshopts} PS1='{PROMPT} ' sh\n",
            path = single_quoted(&std::env::var("PATH").unwrap_or_default()),
            home = p("home"),
            config = p("config"),
            state = p("state"),
            run = p("run"),
            nixconf = p("nixconf"),
            sshopts = single_quoted(&fleet.nix_sshopts()),
        );
        std::fs::write(dir.path().join("shell.sh"), shell).unwrap();
        // No status line: the pane is the whole COLS x ROWS window.
        std::fs::write(dir.path().join("tmux.conf"), "set -g status off\n").unwrap();
        let builders = builder_namespaces(fleet);
        ensure(!builders.is_empty(), || {
            format!("no mntns files in {}", fleet.dir.display())
        })?;
        let mut term = Terminal {
            socket,
            socket_path: None,
            dir,
            machines,
            rbtop: None,
            builders,
        };
        let conf = term.path("tmux.conf").display().to_string();
        let shell = format!(
            "sh {}",
            single_quoted(&term.path("shell.sh").display().to_string())
        );
        let (cols, rows) = (COLS.to_string(), ROWS.to_string());
        term.tmux(&[
            "-f",
            &conf,
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &cols,
            "-y",
            &rows,
            &shell,
        ])?;
        term.socket_path = Some(term.display("#{socket_path}")?.into());
        let size = term.display("#{pane_width}x#{pane_height}")?;
        ensure(size == format!("{COLS}x{ROWS}"), || {
            format!("the pane is {size}, not {COLS}x{ROWS}")
        })?;
        term.wait_normal("the shell's prompt", |s| {
            if last_line(s) == PROMPT {
                Ok(())
            } else {
                Err("no prompt yet".into())
            }
        })?;
        Ok(term)
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn tmux(&self, args: &[&str]) -> Result<String, Failed> {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .env("LANG", "C.UTF-8")
            .output()
            .map_err(|e| format!("cannot run tmux (apt-get install tmux): {e}"))?;
        ensure(out.status.success(), || {
            format!(
                "tmux {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A tmux format, e.g. `#{alternate_on}`, for the pane.
    fn display(&self, format: &str) -> Result<String, Failed> {
        Ok(self
            .tmux(&["display-message", "-p", "-t", "e2e", format])?
            .trim()
            .to_string())
    }

    fn alternate_screen(&self) -> Result<bool, Failed> {
        Ok(self.display("#{alternate_on}")? == "1")
    }

    /// The visible screen as text.
    fn screen(&self) -> Result<String, Failed> {
        self.tmux(&["capture-pane", "-p", "-t", "e2e"])
    }

    /// The visible screen with lines the terminal wrapped joined again (for
    /// the shell's output, where a long line wraps).
    fn joined_screen(&self) -> Result<String, Failed> {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "e2e"])
    }

    /// The visible screen with its colours and attributes (ANSI escapes).
    fn coloured_screen(&self) -> Result<String, Failed> {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "e2e"])
    }

    /// Keys by tmux name (`Enter`, `Escape`, `j`, `?`).
    fn keys(&self, keys: &[&str]) -> Result<(), Failed> {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.tmux(&args).map(drop)
    }

    /// Text typed literally.
    fn type_text(&self, text: &str) -> Result<(), Failed> {
        self.tmux(&["send-keys", "-t", "e2e", "-l", text]).map(drop)
    }

    /// A command line typed into the shell, with Enter.
    fn run_line(&self, line: &str) -> Result<(), Failed> {
        self.type_text(line)?;
        self.keys(&["Enter"])
    }

    /// The last lines of rbtop's log files, for failure messages.
    fn log_tail(&self) -> String {
        let mut tail = String::new();
        for entry in walk(&self.path("state")) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            tail += &format!("--- {}\n", entry.display());
            for line in &lines[lines.len().saturating_sub(15)..] {
                tail += line;
                tail.push('\n');
            }
        }
        tail
    }

    /// Polls `capture` until `check` returns Ok (its value is returned) or
    /// `DEADLINE` passes (the error names `what`, the last reason and screen).
    fn wait_with<T>(
        &self,
        what: &str,
        capture: impl Fn(&Terminal) -> Result<String, Failed>,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, Failed> {
        let started = Instant::now();
        loop {
            let screen = capture(self)?;
            match check(&screen) {
                Ok(value) => return Ok(value),
                Err(reason) if started.elapsed() > DEADLINE => {
                    return Err(format!(
                        "no {what} after {DEADLINE:?}: {reason}\n--- screen\n{screen}\n{}",
                        self.log_tail()
                    )
                    .into());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits for the (alternate) screen to satisfy `check`.
    fn wait<T>(
        &self,
        what: &str,
        check: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, Failed> {
        self.wait_with(what, Terminal::screen, check)
    }

    /// Waits for the screen, with wrapped lines joined, to satisfy `check`.
    fn wait_normal<T>(
        &self,
        what: &str,
        check: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, Failed> {
        self.wait_with(what, Terminal::joined_screen, check)
    }

    /// Types `rbtop --machines <copy> --timeout 4 <extra>; echo "exit=$?"`
    /// into the shell and waits until the dashboard is drawn.
    fn start_rbtop(&mut self, extra: &str) -> Result<u32, Failed> {
        self.start_rbtop_with("", extra)
    }

    /// `env`: assignments put before the command (`NAME=value ...`).
    fn start_rbtop_with(&mut self, env: &str, extra: &str) -> Result<u32, Failed> {
        let line = format!(
            "{env} {} --machines {} --timeout {PROBE_TIMEOUT} {extra}; echo \"exit=$?\"",
            single_quoted(env!("CARGO_BIN_EXE_rbtop")),
            single_quoted(&self.machines.display().to_string())
        );
        self.run_line(&line)?;
        self.wait("dashboard", |s| {
            if s.starts_with(" rbtop ") && table_title(s).is_some() {
                Ok(())
            } else {
                Err("no header and hosts table".into())
            }
        })?;
        ensure(self.alternate_screen()?, || {
            "the dashboard is not on the alternate screen".into()
        })?;
        let pid = self.rbtop_pid()?;
        self.rbtop = Some(pid);
        Ok(pid)
    }

    /// The rbtop process: the child of the pane's shell.
    fn rbtop_pid(&self) -> Result<u32, Failed> {
        let shell = self.display("#{pane_pid}")?;
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default();
        let found: Vec<u32> = children
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "rbtop")
            })
            .collect();
        match found[..] {
            [pid] => Ok(pid),
            _ => Err(format!(
                "the shell {shell} has children {children:?}, rbtop among them {found:?}"
            )
            .into()),
        }
    }

    /// Waits until every fleet host has a row with its expected status (in
    /// machines-file order) and the header counts them right; returns the screen.
    fn wait_all_resolved(&self, fleet: &Fleet) -> Result<String, Failed> {
        let want: Vec<(String, String)> = fleet
            .hosts
            .iter()
            .map(|h| (expected_status(&h.kind).to_string(), h.name.clone()))
            .collect();
        let total = fleet.hosts.len();
        let up = fleet.hosts.iter().filter(|h| h.kind == "healthy").count();
        let header = format!("hosts {up}/{total} up, {} down ", total - up);
        let title = format!(" Hosts ({total}) sorted by machines order ");
        self.wait("every host with its status", |s| {
            let rows = table_rows(s);
            if rows != want {
                return Err(format!("rows (status, host):\n{rows:?}\nwanted:\n{want:?}"));
            }
            let first = s.lines().next().unwrap_or_default();
            if !first.contains(&header) {
                return Err(format!("header {first:?} lacks {header:?}"));
            }
            if table_title(s).is_none_or(|t| !t.starts_with(&title)) {
                return Err(format!("title is not {title:?}"));
            }
            Ok(s.to_string())
        })
    }

    /// The host of the highlighted (selected) row.
    fn selected_host(&self) -> Result<Option<String>, Failed> {
        let coloured = self.coloured_screen()?;
        Ok(coloured.lines().find_map(|raw| {
            let (text, reverse) = strip_ansi(raw);
            let row = table_rows(&text).pop()?;
            reverse.then_some(row.1)
        }))
    }

    /// Echoes the terminal's mode into the shell: `stty -g`, and which of
    /// `COOKED_FLAGS` are on (`icanon`) or off (`-icanon`).
    /// After rbtop ended by `how`: the terminal's mode is exactly `before`
    /// and nothing of the run is left on the machine.
    fn ends_clean(&self, before: &(String, Vec<String>), how: &str) -> Result<(), Failed> {
        let (mode_before, flags_before) = before;
        let (mode_after, flags_after) = self.terminal_mode("after")?;
        ensure(&flags_after == flags_before, || {
            format!("terminal flags after {how}: {flags_after:?} (before: {flags_before:?})")
        })?;
        ensure(&mode_after == mode_before, || {
            format!("stty -g after {how}: {mode_after} (before: {mode_before})")
        })?;
        self.nothing_left(&format!("after {how}"))
    }

    fn terminal_mode(&self, tag: &str) -> Result<(String, Vec<String>), Failed> {
        let flags = COOKED_FLAGS.join("|");
        self.run_line(&format!(
            "echo \"{tag}-g=$(stty -g)\"; echo \"{tag}-flags=$(stty -a | tr -s ' ;' '\\n\\n' | grep -E -x -- '-?({flags})' | tr '\\n' ' ')\""
        ))?;
        let g_prefix = format!("{tag}-g=");
        let flags_prefix = format!("{tag}-flags=");
        self.wait_normal(&format!("output of stty ({tag})"), |s| {
            let find = |prefix: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(|rest| rest.trim().to_string())
            };
            match (find(&g_prefix), find(&flags_prefix)) {
                (Some(g), Some(flags)) if last_line(s) == PROMPT => {
                    Ok((g, flags.split_whitespace().map(str::to_string).collect()))
                }
                _ => Err("stty has not answered yet".into()),
            }
        })
    }

    /// After rbtop ended with `code`: its `exit=<code>` line and the
    /// prompt are back on the normal screen, with no dashboard left on it.
    fn wait_exit(&mut self, code: i32, pid: u32) -> Result<(), Failed> {
        let exit_line = format!("exit={code}");
        self.wait_normal(&format!("`{exit_line}` and a prompt"), |s| {
            let lines: Vec<&str> = s
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .collect();
            match lines.iter().rposition(|l| l.starts_with("exit=")) {
                Some(i) if lines[i] == exit_line && lines[i + 1..] == [PROMPT] => Ok(()),
                Some(i) => Err(format!(
                    "rbtop said {:?}, then {:?}",
                    lines[i],
                    &lines[i + 1..]
                )),
                None => Err("no exit line yet".into()),
            }
        })?;
        ensure(!alive(pid), || format!("rbtop {pid} still runs"))?;
        self.rbtop = None;
        ensure(!self.alternate_screen()?, || {
            "the terminal is still on the alternate screen".into()
        })?;
        let screen = self.joined_screen()?;
        ensure(
            !screen.contains(" Hosts (")
                && !screen.contains("● up")
                && !screen.contains(" rbtop   hosts"),
            || format!("dashboard remnants on the normal screen:\n{screen}"),
        )
    }

    /// What a run leaves behind if it does not close its sessions: `(what,
    /// command-line needle, namespaces to look in)`.
    fn session_processes(&self) -> [(&'static str, String, Option<&[String]>); 3] {
        let builders = Some(self.builders.as_slice());
        [
            ("ssh masters", self.path("run").display().to_string(), None),
            (
                "store processes on builders",
                "--serve --write".into(),
                builders,
            ),
            ("facts loops on builders", "rbtop-facts".into(), builders),
        ]
    }

    /// No ssh master of this terminal's rbtop, no store process or facts
    /// loop on any builder, no control directory: give each a few seconds.
    fn nothing_left(&self, when: &str) -> Result<(), Failed> {
        for (what, needle, within) in self.session_processes() {
            let left = settle(&needle, within, Duration::from_secs(5));
            ensure(left.is_empty(), || format!("{what} left {when}: {left:?}"))?;
        }
        let dirs: Vec<String> = std::fs::read_dir(self.path("run"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ensure(dirs.is_empty(), || {
            format!("control directories left {when}: {dirs:?}")
        })
    }

    /// While the dashboard runs with every host resolved: the sessions the
    /// leftover checks look for do exist (so those checks can fail).
    /// The facts loops start with the second probe (the first one's single
    /// session per host execs the store), one refresh interval after the
    /// first: each kind is waited for, up to 20 s.
    fn sessions_are_open(&self) -> Result<(), Failed> {
        for (what, needle, within) in self.session_processes() {
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while processes_matching(&needle, within).is_empty()
                && std::time::Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            ensure(!processes_matching(&needle, within).is_empty(), || {
                format!(
                    "no {what} while the dashboard runs: the leftover check would prove nothing"
                )
            })?;
        }
        Ok(())
    }

    /// Closes the terminal: the tmux server and everything in it.
    fn close(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        if let Some(path) = self.socket_path.take() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(pid) = self.rbtop.take() {
            let started = Instant::now();
            while alive(pid) && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive(pid) {
                eprintln!("rbtop {pid} survived its terminal; killing it");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.close();
        // ssh masters a failed trial's rbtop may have left (their sockets are ours).
        for process in settle(
            &self.path("run").display().to_string(),
            None,
            Duration::from_secs(3),
        ) {
            if let Some((pid, _)) = process.split_once(':') {
                let _ = Command::new("kill").args(["-TERM", pid]).status();
            }
        }
    }
}

/// The last non-empty line of a screen, without trailing blanks.
fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .map(str::trim_end)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

// ---- the trials

/// Every host of the fleet gets a row with its own status word, and the
/// header counts them.
fn shows_every_host_with_its_status(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    let screen = term.wait_all_resolved(fleet)?;
    ensure(
        screen
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(" slots busy/usable x86_64-linux ")),
        || format!("no slots line:\n{screen}"),
    )?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// `/` and a host name narrow the table to that host; Esc brings every row
/// back, both while typing and after Enter kept the filter.
fn filter_narrows_the_table(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    let total = fleet.hosts.len();
    term.wait("a row for every host", |s| {
        let n = table_rows(s).len();
        if n == total {
            Ok(())
        } else {
            Err(format!("{n} rows"))
        }
    })?;
    let only = |host: &'static str, status: &'static str| {
        let title = format!(" Hosts (1 of {total}) ");
        let filter = format!("filter '{host}'");
        move |s: &str| {
            let rows = table_rows(s);
            if rows != [(status.to_string(), host.to_string())] {
                return Err(format!("rows {rows:?}"));
            }
            match table_title(s) {
                Some(t) if t.starts_with(&title) && t.contains(&filter) => Ok(()),
                t => Err(format!("title {t:?}, not {title:?} with {filter:?}")),
            }
        }
    };
    let filter_prompt = |s: &str| {
        if last_line(s).starts_with(" filter:") {
            Ok(())
        } else {
            Err("no prompt".to_string())
        }
    };
    let all_rows = |s: &str| {
        let n = table_rows(s).len();
        let title = format!(" Hosts ({total}) ");
        match table_title(s) {
            Some(t) if n == total && t.starts_with(&title) && !t.contains("filter") => Ok(()),
            t => Err(format!("{n} rows, title {t:?}")),
        }
    };

    term.keys(&["/"])?;
    term.wait("the filter prompt", filter_prompt)?;
    term.type_text("b1")?;
    term.wait("only b1 under filter 'b1'", only("b1", "up"))?;
    // Esc while typing clears the filter.
    term.keys(&["Escape"])?;
    term.wait("every row back after Esc", all_rows)?;

    // Enter keeps the filter and closes the prompt; Esc then clears it.
    term.keys(&["/"])?;
    term.wait("the filter prompt", filter_prompt)?;
    term.type_text("wrongkey")?;
    term.wait("only wrongkey", only("wrongkey", "hostkey"))?;
    term.keys(&["Enter"])?;
    let still_only = only("wrongkey", "hostkey");
    term.wait("the filter kept, its prompt closed", |s| {
        still_only(s)?;
        if last_line(s).starts_with(" filter:") {
            Err("the prompt is still open".into())
        } else {
            Ok(())
        }
    })?;
    term.keys(&["Escape"])?;
    term.wait("every row back after Esc", all_rows)?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// `?` opens the help overlay with the keys; another key closes it and the
/// dashboard is still there.
fn help_lists_the_keys(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.keys(&["?"])?;
    term.wait("the help overlay", |s| {
        if !s.contains(" Help: keys (j/k scroll, any other key closes) ") {
            return Err("no help title".into());
        }
        let lines: Vec<&str> = s.lines().filter(|l| l.starts_with('│')).collect();
        for (key, words) in [
            ("/", "filter"),
            ("r", "probe every host now"),
            ("d", "machines file problems"),
            ("Enter", "detail pane"),
            ("s", "sort"),
        ] {
            let listed = lines.iter().any(|l| {
                let mut parts = l.trim_start_matches('│').split_whitespace();
                parts.next() == Some(key) && l.contains(words)
            });
            if !listed {
                return Err(format!("no line for key {key:?} ({words})"));
            }
        }
        Ok(())
    })?;
    // Quit is listed last: scroll to it (j scrolls, it does not close help).
    term.keys(&["j"; 16])?;
    term.wait("quit at the end of the help", |s| {
        let listed = s.lines().any(|l| {
            let mut parts = l.trim_start_matches('│').split_whitespace();
            parts.next() == Some("q") && l.contains("quit")
        });
        if listed {
            Ok(())
        } else {
            Err("no line for key \"q\" (quit)".into())
        }
    })?;
    term.keys(&["x"])?;
    term.wait("the hosts table back", |s| {
        if s.contains(" Help: keys") {
            Err("help still open".into())
        } else if table_title(s).is_none() {
            Err("no hosts table".into())
        } else {
            Ok(())
        }
    })?;
    ensure(alive(pid) && term.alternate_screen()?, || {
        "a key that closes help must not quit".into()
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// Enter on a failing host opens its detail pane: the whole reason and the
/// machines file line it comes from.
fn detail_pane_says_why_a_host_fails(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    let index = fleet
        .hosts
        .iter()
        .position(|h| h.name == "authfail")
        .unwrap();
    let mut keys = vec!["g"];
    keys.extend(std::iter::repeat_n("j", index));
    term.keys(&keys)?;
    let started = Instant::now();
    loop {
        let selected = term.selected_host()?;
        if selected.as_deref() == Some("authfail") {
            break;
        }
        ensure(started.elapsed() < DEADLINE, || {
            format!(
                "g and {index} j select {selected:?}, not authfail:\n{}",
                term.coloured_screen().unwrap_or_default()
            )
        })?;
        std::thread::sleep(Duration::from_millis(100));
    }
    term.keys(&["Enter"])?;
    let reason = format!(
        "ssh: root@{}: Permission denied (publickey).",
        fleet.host("authfail").addr
    );
    let origin = format!("{}:{}", term.machines.display(), index + 1);
    term.wait("authfail's detail pane", |s| {
        let lines: Vec<&str> = s.lines().collect();
        let top = lines
            .iter()
            .position(|l| l.starts_with("┌ authfail ✗ auth "))
            .ok_or("no detail pane titled `authfail ✗ auth`")?;
        let pane = &lines[top..];
        let field = |name: &str| {
            pane.iter()
                .find(|l| l.starts_with(&format!("│{name} ")))
                .map(|l| {
                    l.trim_start_matches('│')
                        .trim_end_matches('│')
                        .trim()
                        .to_string()
                })
        };
        let reason_line = field("reason").ok_or("no reason line")?;
        if !reason_line.ends_with(&reason) {
            return Err(format!(
                "{reason_line:?} is not the whole reason {reason:?}"
            ));
        }
        let machines = field("machines").ok_or("no machines line")?;
        if !machines.contains(&format!("{origin}  ssh://authfail")) {
            return Err(format!("{machines:?} does not name {origin}"));
        }
        Ok(())
    })?;
    term.keys(&["Escape"])?;
    term.wait("the detail pane closed by Esc", |s| {
        if s.contains("┌ authfail") {
            Err("still open".into())
        } else {
            Ok(())
        }
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// `SHA256:…` of a `base64 -w0`'d `.pub` line, by `ssh-keygen -lf`.
fn fingerprint_of(pub_b64: &str) -> Result<String, Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("key.pub");
    let line = Command::new("base64")
        .args(["-d"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(pub_b64.as_bytes())?;
            child.wait_with_output()
        })
        .map_err(|e| e.to_string())?;
    std::fs::write(&path, &line.stdout).map_err(|e| e.to_string())?;
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| format!("ssh-keygen -lf said {out:?}").into())
}

/// wrongkey's detail: the SHA256 of the key the host really presents (what
/// `ssh-keygen -lf` says of its hostkey.pub) next to the pinned one, the fix
/// naming this machines line, and nothing of rbtop's temporary known-hosts file.
fn a_refused_host_key_shows_both_fingerprints_and_the_fix(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    let real = fleet
        .host("wrongkey")
        .hostkey_b64
        .clone()
        .ok_or("wrongkey has no host key")?;
    let presented = fingerprint_of(&real)?;
    let index = select_host(&mut term, fleet, "wrongkey")?;
    term.keys(&["Enter"])?;
    let origin = format!("{}:{}", term.machines.display(), index + 1);
    term.wait("wrongkey's detail with both fingerprints", |s| {
        // The fix wraps in the pane: its words, joined again.
        let joined = s
            .lines()
            .flat_map(|l| l.trim_matches('│').split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        if !s.contains("┌ wrongkey ✗ hostkey ") {
            Err("no detail pane for wrongkey".into())
        } else if !s.contains(&format!("presented   {presented}")) {
            Err(format!("no `presented   {presented}`"))
        } else if !s.contains("pinned key  SHA256:") {
            Err("no pinned fingerprint".into())
        } else if s.contains(&format!("pinned key  {presented}")) {
            Err("the pinned fingerprint is the presented one".into())
        } else if !joined.contains("field 8 (the host key)") || !joined.contains(&origin) {
            Err(format!("no fix naming {origin}"))
        } else if s.contains("pinned_host_key") || s.contains("ssh-keygen -f") {
            Err("rbtop's temporary file is named".into())
        } else {
            Ok(())
        }
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// `q` quits: exit 0, the prompt back on the normal screen, the terminal
/// out of raw mode, and no SSH session of the run left anywhere.
fn q_quits_and_restores_the_terminal(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let (mode_before, flags_before) = term.terminal_mode("before")?;
    ensure(
        COOKED_FLAGS
            .iter()
            .all(|f| flags_before.iter().any(|g| g == f)),
        || format!("a fresh pane should have {COOKED_FLAGS:?} on, has {flags_before:?}"),
    )?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    term.sessions_are_open()?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)?;
    term.ends_clean(&(mode_before, flags_before), "q")
}

/// SIGTERM: exit 143 and the same clean terminal and fleet as `q`.
fn sigterm_exits_143_and_restores_the_terminal(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let (mode_before, flags_before) = term.terminal_mode("before")?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    term.sessions_are_open()?;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    ensure(status.success(), || format!("kill -TERM {pid}: {status}"))?;
    term.wait_exit(143, pid)?;
    term.ends_clean(&(mode_before, flags_before), "SIGTERM")
}

/// No builders: the empty state says where rbtop looked, how to add one,
/// and what this machine builds by itself; q still quits cleanly.
fn empty_state_says_where_rbtop_looked(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    std::fs::write(&term.machines, "# no builders yet\n").unwrap();
    let pid = term.start_rbtop("")?;
    term.wait("the empty state", |s| {
        for needle in [
            " Hosts (0) ",
            "No builders configured.",
            "rbtop looked at, in order:",
            "  - --machines ",
            "To add a builder, put a line such as",
            "Meanwhile this machine builds by itself:",
            "system-features",
            "max-jobs",
        ] {
            if !s.contains(needle) {
                return Err(format!("no {needle:?}"));
            }
        }
        Ok(())
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// A panic (injected with a debug-build-only key): the terminal is given
/// back first, the message is on the normal screen, rbtop exits 101, and
/// every SSH session is still closed.
fn a_panic_restores_the_terminal_and_closes_the_sessions(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let (mode_before, flags_before) = term.terminal_mode("before")?;
    let pid = term.start_rbtop_with("RUST_BACKTRACE=0 RBTOP_TEST_PANIC_KEY=P", "")?;
    term.wait_all_resolved(fleet)?;
    term.sessions_are_open()?;
    term.keys(&["P"])?;
    term.wait_exit(101, pid)?;
    let screen = term.joined_screen()?;
    ensure(screen.contains("test panic requested"), || {
        format!("no panic message on the normal screen:\n{screen}")
    })?;
    term.ends_clean(&(mode_before, flags_before), "a panic")
}

/// Closing the terminal (SIGHUP) ends rbtop and every SSH session it had.
fn closing_the_terminal_leaves_nothing_running(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    term.sessions_are_open()?;
    term.tmux(&["kill-server"])?;
    let started = Instant::now();
    while alive(pid) {
        ensure(started.elapsed() < DEADLINE, || {
            format!("rbtop {pid} still runs {DEADLINE:?} after its terminal closed")
        })?;
        std::thread::sleep(Duration::from_millis(100));
    }
    term.rbtop = None;
    term.nothing_left("after the terminal closed")
}

/// Select the host named `name` (`g`, then `j` down to it) and wait until
/// the table shows it selected; returns its index in the fleet.
fn select_host(term: &mut Terminal, fleet: &Fleet, name: &str) -> Result<usize, Failed> {
    let index = fleet
        .hosts
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| format!("the fleet has no host {name}"))?;
    let mut keys = vec!["g"];
    keys.extend(std::iter::repeat_n("j", index));
    term.keys(&keys)?;
    let started = Instant::now();
    while term.selected_host()?.as_deref() != Some(name) {
        ensure(started.elapsed() < DEADLINE, || {
            format!("{name} is not selected")
        })?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(index)
}

/// The jobs pane's row for `what` (a job or a derivation), if shown.
fn jobs_row<'s>(screen: &'s str, what: &str) -> Option<&'s str> {
    let top = screen.lines().position(|l| l.starts_with(" Jobs ("))?;
    screen.lines().skip(top).find(|l| l.contains(what))
}

/// The header's two lines, joined: what it counts moves between them as
/// the terminal's width and the other counts decide.
fn header_lines(screen: &str) -> String {
    screen.lines().take(2).collect::<Vec<_>>().join("\n")
}

/// The highest `name> line N of TOTAL` of numbered.nix on screen (lines
/// are padded with blanks).
fn highest_line(screen: &str, total: u32) -> Option<u32> {
    let suffix = format!(" of {total}");
    screen
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.trim_end().split_once("> line ")?;
            rest.strip_suffix(&suffix)?.parse::<u32>().ok()
        })
        .max()
}

/// `b` on b1 launches a slow build pinned there: the jobs pane shows it
/// building on ssh://b1, its log (`l`) shows lines arriving, `x` `y`
/// cancels it, it ends cancelled with nothing of it left here or on b1,
/// and `q` gives the terminal back.
/// A seed no earlier run used, short enough for the derivation's whole
/// name to fit the jobs pane.
fn fresh_seed() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e{}x{}", std::process::id(), nanos % 1_000_000)
}

/// Start rbtop (with a Nix that asks no binary cache), select b1, launch
/// numbered.nix with `seed` there (200 lines, 0.1 s apart) and wait until
/// its derivation builds on ssh://b1. Returns rbtop's pid.
fn launch_on_b1(term: &mut Terminal, fleet: &Fleet, seed: &str) -> Result<u32, Failed> {
    let env = "NIX_CONFIG=\"$(printf 'substituters =\\nexperimental-features = nix-command')\"";
    let pid = term.start_rbtop_with(env, "")?;
    term.wait_all_resolved(fleet)?;
    let b1 = fleet.hosts.iter().position(|h| h.name == "b1").unwrap();
    let mut keys = vec!["g"];
    keys.extend(std::iter::repeat_n("j", b1));
    term.keys(&keys)?;
    let started = Instant::now();
    while term.selected_host()?.as_deref() != Some("b1") {
        ensure(started.elapsed() < DEADLINE, || "b1 is not selected".into())?;
        std::thread::sleep(Duration::from_millis(100));
    }

    term.keys(&["b"])?;
    term.wait("the launch form pinned to b1", |s| {
        if !s.contains(" Launch a build ") {
            Err("no form".into())
        } else if !s.contains("pin to ssh://b1") {
            Err("not pinned to ssh://b1".into())
        } else {
            Ok(())
        }
    })?;
    let numbered = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builds/numbered.nix");
    term.type_text(&format!(
        "{} --argstr seed {seed} --arg lines 200 --arg delay 0.1",
        numbered.display()
    ))?;
    term.keys(&["Enter"])?;
    let drv_name = format!("rbtop-numbered-{seed}");
    term.wait("the job building on ssh://b1", |s| {
        if s.contains(" Launch a build ") {
            return Err("the form is still open".into());
        }
        let job = jobs_row(s, "#1 ").ok_or("no row for job #1")?;
        if !job.contains("numbered.nix") || !job.contains("ssh://b1") {
            return Err(format!("job row {job:?}"));
        }
        let drv = jobs_row(s, &drv_name).ok_or("no row for its derivation")?;
        if drv.contains("ssh://b1") && drv.contains("building") {
            Ok(())
        } else {
            Err(format!("derivation row {drv:?}"))
        }
    })?;
    Ok(pid)
}

/// The build's processes on the builders: Nix gives a builder its
/// derivation's attributes as variables, so they carry `seed=S`. Checked
/// non-empty while it builds, so that the check after a cancel can fail.
fn builder_processes(
    term: &Terminal,
    seed: &str,
) -> Result<impl Fn() -> Vec<String> + use<>, Failed> {
    let variable = format!("seed={seed}");
    let builders = term.builders.clone();
    let on_builders = move || processes_with_env(&variable, Some(builders.as_slice()));
    ensure(!on_builders().is_empty(), || {
        format!(
            "no process with seed={seed} on a builder while it builds: the leftover check would prove nothing"
        )
    })?;
    ensure(!processes_matching(seed, None).is_empty(), || {
        format!("no local process naming {seed} while it builds")
    })?;
    Ok(on_builders)
}

/// Nothing of the build left here or on the builders within a few seconds.
fn nothing_left(seed: &str, on_builders: impl Fn() -> Vec<String>) -> Result<(), Failed> {
    let local = settle(seed, None, Duration::from_secs(5));
    ensure(local.is_empty(), || {
        format!("processes of the build left on this machine: {local:?}")
    })?;
    let remote = settle_on(Duration::from_secs(5), on_builders);
    ensure(remote.is_empty(), || {
        format!("processes of the build left on the builder: {remote:?}")
    })
}

fn a_build_is_launched_followed_and_cancelled(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let before = term.terminal_mode("before")?;
    let seed = fresh_seed();
    let pid = launch_on_b1(&mut term, fleet, &seed)?;

    term.keys(&["l"])?;
    let line_number = |s: &str| highest_line(s, 200);
    let first = term.wait("build lines in the log pane", |s| {
        let title = s
            .lines()
            .find(|l| l.starts_with(" #1 "))
            .unwrap_or_default();
        if !title.contains("numbered.nix on ssh://b1 ") {
            return Err("no log pane titled for job #1".into());
        }
        match line_number(s) {
            Some(n) if n >= 3 => Ok(n),
            other => Err(format!("last line number {other:?}")),
        }
    })?;
    let has_line_3 = |s: &str| s.lines().any(|l| l.trim_end().ends_with("> line 3 of 200"));
    if !has_line_3(&term.screen()?) {
        // Followed past it already: go to the top (which pauses), then follow again.
        term.keys(&["g"])?;
        term.wait("line 3 of 200 at the top, paused", |s| {
            if has_line_3(s) && s.contains("· paused") {
                Ok(())
            } else {
                Err("not yet".into())
            }
        })?;
        term.keys(&["F"])?;
    }
    term.wait("later lines arriving, followed", |s| match line_number(s) {
        Some(n) if n > first && s.contains("· following") => Ok(()),
        other => Err(format!("last line number {other:?}, was {first}")),
    })?;
    let on_builders = builder_processes(&term, &seed)?;

    term.keys(&["x"])?;
    term.wait("the cancel question", |s| {
        if s.contains("Cancel #1 ") && s.contains(" on ssh://b1? y/n") {
            Ok(())
        } else {
            Err("no question".into())
        }
    })?;
    term.keys(&["y"])?;
    term.wait("the log titled cancelled", |s| {
        let title = s
            .lines()
            .find(|l| l.starts_with(" #1 "))
            .unwrap_or_default();
        if title.contains("· cancelled") {
            Ok(())
        } else {
            Err(format!("title {title:?}"))
        }
    })?;
    term.keys(&["Escape"])?;
    term.wait("the job cancelled in the jobs pane", |s| {
        let job = jobs_row(s, "#1 ").ok_or("no row for job #1")?;
        if job.contains("cancelled") {
            Ok(())
        } else {
            Err(format!("job row {job:?}"))
        }
    })?;
    nothing_left(&seed, on_builders)?;

    term.keys(&["q"])?;
    term.wait_exit(0, pid)?;
    term.ends_clean(&before, "q after a cancelled build")
}

/// Stop rbtop with `stop` while a build runs on b1, expect `code`, and
/// check that the build was cancelled: nothing of it left here or on b1, and
/// the terminal as it was.
/// `exit_says`: a line rbtop must have printed once the terminal was back.
fn stop_with_a_build_running(
    fleet: &Fleet,
    how: &str,
    code: i32,
    exit_says: Option<&str>,
    stop: impl FnOnce(&mut Terminal, u32) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let before = term.terminal_mode("before")?;
    let seed = fresh_seed();
    let pid = launch_on_b1(&mut term, fleet, &seed)?;
    let on_builders = builder_processes(&term, &seed)?;
    stop(&mut term, pid)?;
    term.wait_exit(code, pid)?;
    if let Some(line) = exit_says {
        let screen = term.joined_screen()?;
        ensure(screen.lines().any(|l| l.trim_end() == line), || {
            format!("no line {line:?} after the exit:\n{screen}")
        })?;
    }
    nothing_left(&seed, on_builders)?;
    term.ends_clean(&before, how)
}

/// `q` with a build running asks first, naming the build; `n` returns to
/// the dashboard with the build still running; `q` asked again and `q`
/// once more cancels it (the footer says so), rbtop exits 0 once it has
/// ended, its exit line names what was cancelled, and nothing of it is left.
fn quitting_with_a_build_running_cancels_it_first(fleet: &Fleet) -> Result<(), Failed> {
    let exit_line = "rbtop: cancelled on quit: #1 numbered.nix on ssh://b1";
    stop_with_a_build_running(
        fleet,
        "q with a build running",
        0,
        Some(exit_line),
        |term, _| {
            let question = |s: &str| {
                if s.contains(
                    "1 build is running: #1 numbered.nix on ssh://b1. Quit and cancel it? y/n",
                ) {
                    Ok(())
                } else {
                    Err("no question naming the build".to_string())
                }
            };
            term.keys(&["q"])?;
            term.wait("the question before quitting", |s| question(s))?;
            term.keys(&["n"])?;
            term.wait("the dashboard back, the build still running", |s| {
                let job = jobs_row(s, "#1 ").ok_or("no row for job #1")?;
                if question(s).is_ok() {
                    Err("the question is still open".into())
                } else if job.contains("running") {
                    Ok(())
                } else {
                    Err(format!("job row {job:?}"))
                }
            })?;
            term.keys(&["q"])?;
            term.wait("the question again", |s| question(s))?;
            term.keys(&["q"])?;
            term.wait("the footer saying the build is being cancelled", |s| {
                if s.contains("cancelling 1 build…") {
                    Ok(())
                } else {
                    Err("no notice".into())
                }
            })
        },
    )?;
    Ok(())
}

/// `b` on a host that is down says so in the form, with the probe's reason,
/// and the first Enter only asks; Esc then closes the form and no job starts.
fn launching_on_a_down_host_says_so_and_asks(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    let name = fleet
        .hosts
        .iter()
        .find(|h| h.kind == "refused")
        .ok_or("the fleet has no refused host")?
        .name
        .clone();
    select_host(&mut term, fleet, &name)?;
    term.keys(&["b"])?;
    let warning = format!("warning: {name} is down: refused: ");
    term.wait("the form warning that the host is down", |s| {
        if s.contains(" Launch a build ") && s.contains(&warning) {
            Ok(())
        } else {
            Err(format!("no {warning:?}"))
        }
    })?;
    term.type_text("./nothing.nix")?;
    term.keys(&["Enter"])?;
    term.wait("the form asking for a second Enter", |s| {
        if s.contains(" Launch a build ") && s.contains("Enter again to launch there anyway") {
            Ok(())
        } else {
            Err("no question".into())
        }
    })?;
    term.keys(&["Escape"])?;
    term.wait("the form closed, no job", |s| {
        if s.contains(" Launch a build ") {
            Err("the form is still open".into())
        } else if s.contains(" Jobs (") {
            Err("a job was started".into())
        } else {
            Ok(())
        }
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// SIGTERM with a build running: exit 143, the build cancelled.
fn sigterm_with_a_build_running_leaves_nothing(fleet: &Fleet) -> Result<(), Failed> {
    stop_with_a_build_running(
        fleet,
        "SIGTERM with a build running",
        143,
        None,
        |_, pid| {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            ensure(status.success(), || format!("kill -TERM {pid}: {status}"))
        },
    )
}

/// An orphan on b1 (its serving process stopped, its client connection
/// cut, its builder still running) shows in b1's detail pane as `orphan`
/// and `·1!` in the JOBS column; `K` `y` kills it on b1 and nothing of it
/// is left there.
fn k_kills_an_orphaned_build_on_its_builder(fleet: &Fleet) -> Result<(), Failed> {
    let orphan = triage::make_orphan(fleet, "b1")?;
    let mut term = Terminal::open(fleet)?;
    let before = term.terminal_mode("before")?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    let b1 = fleet.hosts.iter().position(|h| h.name == "b1").unwrap();
    let mut keys = vec!["g"];
    keys.extend(std::iter::repeat_n("j", b1));
    keys.push("Enter");
    term.keys(&keys)?;
    term.wait("b1's JOBS cell and detail pane showing the orphan", |s| {
        let row = s
            .lines()
            .find(|l| l.contains(" b1 "))
            .ok_or("no row for b1")?;
        if !row.contains("·1!") {
            return Err(format!("b1's row {row:?}"));
        }
        let line = s
            .lines()
            .find(|l| l.contains(&orphan.name))
            .ok_or("the build is not in the detail pane")?;
        if line.contains("orphan") && line.contains(&format!("pid {}", orphan.builder.pid)) {
            Ok(())
        } else {
            Err(format!("its line {line:?}"))
        }
    })?;
    // Focus the detail pane (its only build is selected), then K.
    term.keys(&["Tab", "K"])?;
    term.wait("the kill prompt", |s| {
        if s.contains(" Kill a build ") && s.contains(&orphan.name) {
            Ok(())
        } else {
            Err("no prompt".into())
        }
    })?;
    term.keys(&["y"])?;
    term.wait("the pane saying it was killed", |s| {
        // The line wraps where the name's length puts it.
        if s.contains(&format!("killed {}", orphan.name)) && s.contains("nothing of") {
            Ok(())
        } else {
            Err("no outcome yet".into())
        }
    })?;
    triage::nothing_left(&orphan)?;
    ensure(!orphan.serving.alive(), || {
        "the orphan's serving process was left behind".into()
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)?;
    term.ends_clean(&before, "q after K")
}

/// Another terminal's `rbtop build` (its own state directory) builds on
/// b1; this dashboard shows its slot (root's nix behind the hook) and the
/// build on b1; Enter on that build follows the other rbtop's log read
/// only, lines arriving as they are built. Cancelled over there (Ctrl-C),
/// nothing of it is left, and this dashboard quits without asking.
fn another_terminal_s_build_log_opens_on_enter(fleet: &Fleet) -> Result<(), Failed> {
    let builder = Terminal::open(fleet)?;
    let seed = fresh_seed();
    let numbered = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builds/numbered.nix");
    builder.run_line(&format!(
        "NIX_CONFIG=\"$(printf 'substituters =\\nexperimental-features = nix-command')\" \
         {} --machines {} build --on b1 -- {} --argstr seed {seed} --arg lines 400 --arg delay 0.1; \
         echo \"exit=$?\"",
        single_quoted(env!("CARGO_BIN_EXE_rbtop")),
        single_quoted(&builder.machines.display().to_string()),
        single_quoted(&numbered.display().to_string()),
    ))?;
    let drv_name = format!("rbtop-numbered-{seed}");

    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    select_host(&mut term, fleet, "b1")?;
    term.keys(&["Enter"])?;
    term.wait(
        "b1's detail with the other terminal's slot and build",
        |s| {
            let slot = s
                .lines()
                .find(|l| l.contains("held by pid"))
                .ok_or("no slot held on b1 yet")?;
            if !slot.contains("for root: ") {
                return Err(format!("slot line {slot:?}"));
            }
            if s.lines().any(|l| l.contains(&drv_name)) {
                Ok(())
            } else {
                Err("the build is not listed on b1 yet".into())
            }
        },
    )?;
    let on_builders = builder_processes(&term, &seed)?;
    // Focus the detail pane (its only build is selected), then Enter.
    term.keys(&["Tab", "Enter"])?;
    let line_number = |s: &str| highest_line(s, 400);
    let theirs = builder.path("state").display().to_string();
    let first = term.wait("the other rbtop's log in the log pane", |s| {
        let title = s
            .lines()
            .find(|l| l.starts_with(" #1 "))
            .ok_or("no log pane for job #1")?;
        // Under the pane: the other rbtop's file (in its own state
        // directory), read only; no cancel offered in the keys.
        if !s
            .lines()
            .any(|l| l.contains(&format!(" reading {theirs}/")) && l.contains("(read-only)"))
        {
            return Err(format!(
                "no line names the other rbtop's log under {theirs}"
            ));
        }
        if last_line(s).contains("cancel") {
            return Err(format!("keys {:?} offer a cancel", last_line(s)));
        }
        // Nix's records, not only lines: the derivation's builder is known.
        if !title.contains(" on ssh://b1 ") {
            return Err(format!(
                "title {title:?} does not say it builds on ssh://b1"
            ));
        }
        match line_number(s) {
            Some(n) => Ok(n),
            None => Err(format!("no build line under {title:?}")),
        }
    })?;
    term.wait(
        "later lines arriving from the other terminal",
        |s| match line_number(s) {
            Some(n) if n > first => Ok(()),
            other => Err(format!("last line number {other:?}, was {first}")),
        },
    )?;

    // Cancelled in its own terminal; the followed log ends here too.
    builder.keys(&["C-c"])?;
    builder.wait_normal("the other rbtop's exit", |s| {
        if s.lines().any(|l| l.starts_with("exit=")) {
            Ok(())
        } else {
            Err("still running".into())
        }
    })?;
    nothing_left(&seed, on_builders)?;
    term.keys(&["Escape"])?;
    term.wait("the followed log finished in the jobs pane", |s| {
        let job = jobs_row(s, "#1 ").ok_or("no row for the followed log")?;
        if !job.contains("reading") {
            Ok(())
        } else {
            Err(format!("job row {job:?}"))
        }
    })?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)
}

/// `C` runs a canary build on every host that is up: the header counts
/// one `ok` per healthy host and no failure, each result is in its host's
/// detail pane (stage times), a host that is down is `skipped`, and `c`
/// on one host runs it again there; nothing of them is left after `q`.
fn canaries_from_the_dashboard(fleet: &Fleet) -> Result<(), Failed> {
    let mut term = Terminal::open(fleet)?;
    let pid = term.start_rbtop("")?;
    term.wait_all_resolved(fleet)?;
    let healthy = fleet.hosts.iter().filter(|h| h.kind == "healthy").count();
    term.keys(&["g", "C"])?;
    let expected = format!("canaries {healthy} ok");
    term.wait("every healthy host's canary built", |s| {
        let header = header_lines(s);
        if header.contains(&expected) && !header.contains("failed") && !header.contains("building")
        {
            Ok(())
        } else {
            Err(format!("header {header:?}, not {expected:?} alone"))
        }
    })?;
    let first = &fleet.hosts[0];
    term.wait("the selected host's canary in its detail pane", |s| {
        let line = s
            .lines()
            .find(|l| l.starts_with("│canary "))
            .ok_or("no canary line")?;
        if first.kind == "healthy" {
            (line.contains("ok at") && line.contains("upload") && line.contains("copy back"))
                .then_some(())
                .ok_or(format!("{line:?} is not ok with its stages"))
        } else {
            line.contains("skipped: host is not up")
                .then_some(())
                .ok_or(format!("{line:?} is not skipped"))
        }
    })?;
    let down = fleet
        .hosts
        .iter()
        .position(|h| h.kind == "refused")
        .ok_or("no refused host in the fleet")?;
    let mut keys = vec!["g"];
    keys.extend(std::iter::repeat_n("j", down));
    term.keys(&keys)?;
    term.wait("the refused host's canary skipped", |s| {
        let line = s
            .lines()
            .find(|l| l.starts_with("│canary "))
            .ok_or("no canary line")?;
        line.contains("skipped: host is not up (refused)")
            .then_some(())
            .ok_or(format!("{line:?}"))
    })?;
    term.keys(&["g", "c"])?;
    term.wait(
        "`c` runs the first host's canary again and it builds",
        |s| {
            let header = header_lines(s);
            let line = s.lines().find(|l| l.starts_with("│canary ")).unwrap_or("");
            (header.contains(&expected) && line.contains("ok at"))
                .then_some(())
                .ok_or(format!("{header:?} / {line:?}"))
        },
    )?;
    term.keys(&["q"])?;
    term.wait_exit(0, pid)?;
    let left = settle("rbtop-canary", None, Duration::from_secs(10));
    ensure(left.is_empty(), || {
        format!("canary processes left after quitting: {left:?}")
    })
}

/// As root with a local nix-daemon (here with the fleet's own SSH view as
/// its NIX_SSHOPTS), the dashboard checks the daemon's view of every host
/// once: the header counts the hosts that fail for it (each host not up
/// fails for root too), and an up host's detail pane names the identity
/// root's ssh will offer.
fn the_daemon_s_view_in_the_dashboard(fleet: &Fleet) -> Result<(), Failed> {
    const SOCKET: &str = "/nix/var/nix/daemon-socket/socket";
    ensure(!Path::new(SOCKET).exists(), || {
        format!("{SOCKET} exists: another nix-daemon runs here; this trial starts its own")
    })?;
    let mut daemon = Command::new("nix-daemon")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nix-daemon: {e}"))?;
    let result = (|| {
        let started = Instant::now();
        while !Path::new(SOCKET).exists() {
            ensure(started.elapsed() < DEADLINE, || {
                format!("nix-daemon made no {SOCKET}")
            })?;
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut term = Terminal::open(fleet)?;
        let pid = term.start_rbtop("")?;
        term.wait_all_resolved(fleet)?;
        let failing = fleet.hosts.iter().filter(|h| h.kind != "healthy").count();
        let expected = format!("{failing} hosts fail for the daemon (root)");
        term.wait("the daemon's view counted in the header", |s| {
            let header = header_lines(s);
            header
                .contains(&expected)
                .then_some(())
                .ok_or(format!("header {header:?} lacks {expected:?}"))
        })?;
        let key = fleet.client_key().display().to_string();
        term.keys(&["g", "Enter"])?;
        term.wait("the first host's daemon line", |s| {
            let line = s
                .lines()
                .find(|l| l.starts_with("│daemon "))
                .ok_or("no daemon line")?;
            (line.contains("up as root · identity") && s.contains(&key))
                .then_some(())
                .ok_or(format!("{line:?} is not up as root with {key}"))
        })?;
        term.keys(&["q"])?;
        term.wait_exit(0, pid)
    })();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_file(SOCKET);
    result
}

/// The detail pane's `caches` line (the builder's own substituters), if shown.
fn builder_substituters_line(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.starts_with("│caches "))
}

/// With `builders-use-substitutes`, the detail pane says how many of the
/// builder's own substituters it reaches (b1, real Nix 2.8, a real HTTP
/// cache), and `r` checks them again, with this machine's: a cache that
/// lost its `nix-cache-info` shows as unusable in the header and from the
/// builder once `r` is pressed, without restarting rbtop.
fn r_rechecks_the_substituters_and_each_builder_s_own(fleet: &Fleet) -> Result<(), Failed> {
    let www = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    for cache in ["good", "spare"] {
        std::fs::create_dir_all(www.path().join(cache)).unwrap();
        std::fs::write(
            www.path().join(cache).join("nix-cache-info"),
            "StoreDir: /nix/store\n",
        )
        .unwrap();
    }
    let http = http_server::HttpServer::serve(www.path())?;
    let base = format!("http://127.0.0.1:{}", http.port);
    // b1's SSH user (root there) has its own list, as a builder's nix.conf would.
    let b1_conf = fleet.dir.join("b1/home/.config/nix");
    std::fs::create_dir_all(&b1_conf).unwrap();
    std::fs::write(
        b1_conf.join("nix.conf"),
        format!("substituters = {base}/good {base}/spare\n"),
    )
    .unwrap();
    let result = (|| {
        let mut term = Terminal::open(fleet)?;
        std::fs::write(
            term.path("nixconf/nix.conf"),
            format!("builders-use-substitutes = true\nsubstituters = {base}/good\n"),
        )
        .unwrap();
        let pid = term.start_rbtop("")?;
        term.wait_all_resolved(fleet)?;
        term.wait("this machine's substituter, up", |s| {
            let header = header_lines(s);
            header
                .contains("substituters 1/1 usable")
                .then_some(())
                .ok_or(format!("header {header:?}"))
        })?;
        select_host(&mut term, fleet, "b1")?;
        term.keys(&["Enter"])?;
        term.wait("b1's own substituters, both usable", |s| {
            let line = builder_substituters_line(s).ok_or("no substituters line")?;
            line.contains("2/2 substituters usable from the builder")
                .then_some(())
                .ok_or(format!("{line:?}"))
        })?;
        // The good cache goes bad; only `r` can tell. `r` starts a new
        // round at most every 5 s: pressed until one comes.
        std::fs::remove_file(www.path().join("good/nix-cache-info")).unwrap();
        let mut pressed: Option<Instant> = None;
        term.wait("the re-check on r, here and from b1", |s| {
            if pressed.is_none_or(|at| at.elapsed() > Duration::from_secs(2)) {
                let _ = term.keys(&["r"]);
                pressed = Some(Instant::now());
            }
            let header = header_lines(s);
            let line = builder_substituters_line(s).ok_or("no substituters line")?;
            (header.contains("substituters 0/1 usable")
                && line.contains("1/2 substituters usable from the builder")
                && s.contains(&format!("{base}/good: bad-cache-info")))
            .then_some(())
            .ok_or(format!("header {header:?}, b1 {line:?}"))
        })?;
        term.keys(&["q"])?;
        term.wait_exit(0, pid)?;
        let left = settle(
            "rbtop-substituters",
            Some(&term.builders),
            Duration::from_secs(10),
        );
        ensure(left.is_empty(), || {
            format!("left on the builders: {left:?}")
        })
    })();
    let _ = std::fs::remove_file(b1_conf.join("nix.conf"));
    result
}

fn main() {
    fleet_trials::run_on_one_fleet(&[
        (
            "r_rechecks_the_substituters_and_each_builder_s_own",
            r_rechecks_the_substituters_and_each_builder_s_own,
        ),
        (
            "another_terminal_s_build_log_opens_on_enter",
            another_terminal_s_build_log_opens_on_enter,
        ),
        (
            "k_kills_an_orphaned_build_on_its_builder",
            k_kills_an_orphaned_build_on_its_builder,
        ),
        (
            "a_build_is_launched_followed_and_cancelled",
            a_build_is_launched_followed_and_cancelled,
        ),
        (
            "quitting_with_a_build_running_cancels_it_first",
            quitting_with_a_build_running_cancels_it_first,
        ),
        (
            "sigterm_with_a_build_running_leaves_nothing",
            sigterm_with_a_build_running_leaves_nothing,
        ),
        (
            "launching_on_a_down_host_says_so_and_asks",
            launching_on_a_down_host_says_so_and_asks,
        ),
        (
            "shows_every_host_with_its_status",
            shows_every_host_with_its_status,
        ),
        ("filter_narrows_the_table", filter_narrows_the_table),
        ("help_lists_the_keys", help_lists_the_keys),
        (
            "detail_pane_says_why_a_host_fails",
            detail_pane_says_why_a_host_fails,
        ),
        (
            "a_refused_host_key_shows_both_fingerprints_and_the_fix",
            a_refused_host_key_shows_both_fingerprints_and_the_fix,
        ),
        (
            "q_quits_and_restores_the_terminal",
            q_quits_and_restores_the_terminal,
        ),
        (
            "sigterm_exits_143_and_restores_the_terminal",
            sigterm_exits_143_and_restores_the_terminal,
        ),
        (
            "closing_the_terminal_leaves_nothing_running",
            closing_the_terminal_leaves_nothing_running,
        ),
        (
            "a_panic_restores_the_terminal_and_closes_the_sessions",
            a_panic_restores_the_terminal_and_closes_the_sessions,
        ),
        (
            "empty_state_says_where_rbtop_looked",
            empty_state_says_where_rbtop_looked,
        ),
        ("canaries_from_the_dashboard", canaries_from_the_dashboard),
        (
            "the_daemon_s_view_in_the_dashboard",
            the_daemon_s_view_in_the_dashboard,
        ),
    ]);
}
