//! rbtop's own configuration file (TOML), layered under the command line:
//! flag > environment > file > built-in default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{GlobalArgs, ProbeFlags};
use rbtop::diagnostics::Origin;
use rbtop::jobs::runner::JobSettings;
use rbtop::nix_version::NixVersion;
use rbtop::probe::ProbeSettings;
use rbtop::sources::SourceChoice;
use rbtop::ssh::{HostKeyPolicy, SshSettings};
use rbtop::ssh::{split_nix_sshopts, without_control_flags};

/// The file as written; every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub machines: MachinesConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub probe: ProbeConfig,
    #[serde(default)]
    pub dashboard: DashboardConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    /// Action name → keys, replacing that action's default keys.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyList>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Seconds between two probes of an up host.
    pub refresh_interval: Option<f64>,
}

/// `rbtop serve`: the exporter and the live machines file.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `ADDRESS:PORT` to serve `/metrics` and `/` on.
    pub listen: Option<String>,
    /// The live machines file to keep.
    pub write_machines: Option<PathBuf>,
    /// Failed probes in a row before a builder leaves the live file.
    pub out_after: Option<u32>,
    /// Good probes in a row before it comes back.
    pub back_after: Option<u32>,
    /// Seconds between two canary builds on every up host (none if unset).
    pub build_every: Option<f64>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// "nix build", "nix-build" or "nix-store --realise".
    pub command: Option<String>,
    /// Seconds without a log line before a job shows as stalled.
    pub stall_after: Option<f64>,
    /// Seconds a build hook may hold a machine's upload lock before the
    /// dashboard flags it (Nix itself gives up waiting after 15 minutes).
    pub upload_lock_after: Option<f64>,
    /// Log lines kept in memory per job (the log file has all of them).
    pub log_lines: Option<usize>,
    /// Where job log files go.
    pub log_directory: Option<PathBuf>,
    /// Seconds between SIGINT and SIGTERM when cancelling.
    pub interrupt_grace: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL.
    pub terminate_grace: Option<f64>,
}

/// One key (`quit = "q"`) or several (`quit = ["q", "ctrl-c"]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<String> {
        match self {
            KeyList::One(key) => vec![key.clone()],
            KeyList::Many(keys) => keys.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Per-host limit in seconds for one probe (connection, handshake, facts).
    pub timeout: Option<f64>,
    /// Hosts probed at the same time.
    pub concurrency: Option<u32>,
    /// `strict` or `accept-new`, for hosts without a pinned key.
    pub host_key_checking: Option<HostKeyPolicy>,
    /// Whether a cold probe of an `ssh://` host asks the builder's daemon
    /// if it trusts the SSH user (`nix-daemon --stdio` in the same session;
    /// default true).
    pub ssh_trust: Option<bool>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachinesConfig {
    /// Same syntax as `nix --builders`; replaces nix.conf's `builders`.
    pub builders: Option<String>,
    /// A machines file to read instead of nix.conf's `builders`.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `rbtop=trace,warn`, ...
    pub level: Option<String>,
    /// Where the daily log files go.
    pub directory: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Missing, not a regular file, past its bound or unreadable.
    #[error("config file: {0}")]
    Read(#[from] rbtop::bounds::FileError),
    #[error("config file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// `$XDG_CONFIG_HOME/rbtop/config.toml` (default `~/.config/rbtop/config.toml`).
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("rbtop").join("config.toml"))
}

/// Read the file named by `--config`, or the default one if it exists.
/// Returns the config and the path it came from.
pub fn load(explicit: Option<&Path>) -> Result<(FileConfig, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => match default_path() {
            Some(path) if path.exists() => path,
            _ => return Ok((FileConfig::default(), None)),
        },
    };
    let bytes = rbtop::bounds::read_regular_file(&path, rbtop::bounds::CONFIG_FILE)?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        path: path.clone(),
        message: "not UTF-8".to_string(),
    })?;
    let config = parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.clone(),
        message,
    })?;
    Ok((config, Some(path)))
}

pub fn parse(text: &str) -> Result<FileConfig, String> {
    let mut config: FileConfig =
        toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    if config.machines.builders.is_some() && config.machines.file.is_some() {
        return Err("[machines] sets both `builders` and `file`; keep one".to_string());
    }
    if let Some(timeout) = config.probe.timeout {
        crate::cli::parse_timeout(&timeout.to_string())
            .map_err(|e| format!("[probe] timeout = {timeout}: {e}"))?;
    }
    if let Some(refresh) = config.dashboard.refresh_interval {
        crate::cli::parse_refresh(&refresh.to_string())
            .map_err(|e| format!("[dashboard] refresh_interval = {refresh}: {e}"))?;
    }
    if let Some(command) = &config.jobs.command {
        rbtop::jobs::launch::BuildTool::parse(command)
            .map_err(|e| format!("[jobs] command: {e}"))?;
    }
    for (key, value) in [
        ("stall_after", config.jobs.stall_after),
        ("upload_lock_after", config.jobs.upload_lock_after),
        ("interrupt_grace", config.jobs.interrupt_grace),
        ("terminate_grace", config.jobs.terminate_grace),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0 && v <= 86_400.0)
        {
            return Err(format!(
                "[jobs] {key} = {v}: must be above 0 (at most 86400)"
            ));
        }
    }
    if config.jobs.log_lines == Some(0) {
        return Err("[jobs] log_lines must be at least 1".to_string());
    }
    if config.probe.concurrency == Some(0) {
        return Err("[probe] concurrency must be at least 1".to_string());
    }
    if let Some(listen) = &config.serve.listen {
        crate::cli::parse_listen(listen)
            .map_err(|e| format!("[serve] listen = {listen:?}: {e}"))?;
    }
    for (key, value) in [
        ("out_after", config.serve.out_after),
        ("back_after", config.serve.back_after),
    ] {
        if value == Some(0) {
            return Err(format!("[serve] {key} must be at least 1"));
        }
    }
    if let Some(every) = config.serve.build_every {
        crate::cli::parse_build_every(&every.to_string())
            .map_err(|e| format!("[serve] build_every = {every}: {e}"))?;
    }
    let home = dirs::home_dir();
    for path in [
        &mut config.machines.file,
        &mut config.log.directory,
        &mut config.jobs.log_directory,
        &mut config.serve.write_machines,
    ] {
        if let Some(p) = path.take() {
            *path = Some(expand_tilde(&p, home.as_deref()));
        }
    }
    Ok(config)
}

/// `~/x` in a config path means `$HOME/x`, as it would in a shell.
fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// Everything the commands need, after layering.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub source: SourceChoice,
    pub log_filter: String,
    pub log_directory: Option<PathBuf>,
    pub probe: ProbeChoice,
    /// Time between two probes of an up host in the dashboard.
    pub refresh: Duration,
    /// The config file's `[keys]`, checked when the dashboard starts.
    pub keys: BTreeMap<String, Vec<String>>,
    pub jobs: JobsChoice,
    /// `NIX_SSHOPTS` as the environment gave it (split when used).
    pub nix_sshopts: Option<OsString>,
    pub serve: ServeChoice,
}

/// Where `rbtop serve` listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9945";

/// `[serve]` after defaults, before `rbtop serve`'s flags.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeChoice {
    pub listen: std::net::SocketAddr,
    pub write_machines: Option<PathBuf>,
    pub hysteresis: rbtop::export::Hysteresis,
    pub build_every: Option<std::time::Duration>,
}

impl ServeChoice {
    fn from_file(file: &ServeConfig) -> ServeChoice {
        let defaults = rbtop::export::Hysteresis::default();
        ServeChoice {
            listen: file
                .listen
                .as_deref()
                .and_then(|l| crate::cli::parse_listen(l).ok())
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address")),
            write_machines: file.write_machines.clone(),
            build_every: file.build_every.map(std::time::Duration::from_secs_f64),
            hysteresis: rbtop::export::Hysteresis {
                out_after: file.out_after.unwrap_or(defaults.out_after),
                back_after: file.back_after.unwrap_or(defaults.back_after),
            },
        }
    }
}

/// What the environment adds to the flags and the file.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `RBTOP_LOG`.
    pub log: Option<String>,
    /// `NIX_SSHOPTS`: Nix appends it to every ssh it runs, and so does rbtop.
    pub nix_sshopts: Option<OsString>,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            log: std::env::var("RBTOP_LOG").ok(),
            nix_sshopts: std::env::var_os("NIX_SSHOPTS"),
        }
    }
}

/// When a held upload lock is flagged, unless `[jobs] upload_lock_after` says.
pub const DEFAULT_UPLOAD_LOCK_AFTER: Duration = Duration::from_secs(300);

/// `[jobs]` after defaults (the SSH and Nix parts come at run time).
#[derive(Clone, Debug, PartialEq)]
pub struct JobsChoice {
    pub tool: rbtop::jobs::launch::BuildTool,
    pub stall_after: Duration,
    pub upload_lock_after: Duration,
    pub line_cap: usize,
    pub log_directory: Option<PathBuf>,
    pub graces: rbtop::jobs::job::Graces,
}

impl JobsChoice {
    fn from_file(file: &JobsConfig) -> JobsChoice {
        let defaults = rbtop::jobs::job::Graces::default();
        JobsChoice {
            tool: file
                .command
                .as_deref()
                .and_then(|c| rbtop::jobs::launch::BuildTool::parse(c).ok())
                .unwrap_or_default(),
            stall_after: file.stall_after.map_or(
                rbtop::jobs::runner::DEFAULT_STALL_AFTER,
                Duration::from_secs_f64,
            ),
            upload_lock_after: file
                .upload_lock_after
                .map_or(DEFAULT_UPLOAD_LOCK_AFTER, Duration::from_secs_f64),
            line_cap: file.log_lines.unwrap_or(rbtop::jobs::log::DEFAULT_LINE_CAP),
            log_directory: file.log_directory.clone(),
            graces: rbtop::jobs::job::Graces {
                interrupt: file
                    .interrupt_grace
                    .map_or(defaults.interrupt, Duration::from_secs_f64),
                terminate: file
                    .terminate_grace
                    .map_or(defaults.terminate, Duration::from_secs_f64),
            },
        }
    }
}

/// Probe settings from the file (or defaults), before per-command flags.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeChoice {
    pub timeout: Duration,
    pub concurrency: usize,
    pub host_key_policy: HostKeyPolicy,
    pub ssh_trust: bool,
}

impl ProbeChoice {
    fn from_file(file: &ProbeConfig) -> ProbeChoice {
        ProbeChoice {
            timeout: file
                .timeout
                .map_or(rbtop::probe::DEFAULT_TIMEOUT, Duration::from_secs_f64),
            concurrency: file
                .concurrency
                .map_or(rbtop::probe::DEFAULT_CONCURRENCY, |n| n as usize),
            host_key_policy: file.host_key_checking.unwrap_or_default(),
            ssh_trust: file.ssh_trust.unwrap_or(true),
        }
    }

    /// Command-line flags win over the file.
    pub fn with_flags(&self, timeout: Option<f64>, concurrency: Option<u32>) -> ProbeChoice {
        ProbeChoice {
            timeout: timeout.map_or(self.timeout, Duration::from_secs_f64),
            concurrency: concurrency.map_or(self.concurrency, |n| n as usize),
            host_key_policy: self.host_key_policy,
            ssh_trust: self.ssh_trust,
        }
    }
}

pub const DEFAULT_LOG_FILTER: &str = "info";

impl Settings {
    pub fn layer(
        cli: &GlobalArgs,
        file: &FileConfig,
        file_path: Option<&Path>,
        env: &Environment,
    ) -> Settings {
        let source = if let Some(text) = &cli.builders {
            SourceChoice::Builders {
                text: text.clone(),
                origin: Origin::BuildersFlag,
            }
        } else if let Some(path) = &cli.machines {
            SourceChoice::File(path.clone())
        } else if let Some(text) = &file.machines.builders {
            SourceChoice::Builders {
                text: text.clone(),
                origin: Origin::RbtopConfig(file_path.map(Path::to_path_buf).unwrap_or_default()),
            }
        } else if let Some(path) = &file.machines.file {
            SourceChoice::File(path.clone())
        } else {
            SourceChoice::NixConf
        };
        let log_filter = cli
            .log_level
            .clone()
            .or_else(|| env.log.clone())
            .or_else(|| file.log.level.clone())
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_string());
        Settings {
            source,
            log_filter,
            log_directory: file.log.directory.clone(),
            probe: ProbeChoice::from_file(&file.probe),
            refresh: file
                .dashboard
                .refresh_interval
                .map_or(rbtop::dashboard::DEFAULT_REFRESH, Duration::from_secs_f64),
            keys: file
                .keys
                .iter()
                .map(|(action, keys)| (action.clone(), keys.keys()))
                .collect(),
            jobs: JobsChoice::from_file(&file.jobs),
            nix_sshopts: env.nix_sshopts.clone(),
            serve: ServeChoice::from_file(&file.serve),
        }
    }

    /// `NIX_SSHOPTS`, split as Nix splits it, without the flags that would
    /// take over rbtop's own ControlMaster (each dropped one is logged and
    /// passed to `warn`).
    pub fn ssh_extra_args(&self, mut warn: impl FnMut(String)) -> Result<Vec<String>, String> {
        let Some(value) = &self.nix_sshopts else {
            return Ok(Vec::new());
        };
        let value = value.to_str().ok_or("NIX_SSHOPTS is not valid UTF-8")?;
        let (kept, warnings) = without_control_flags(&split_nix_sshopts(value)?);
        for warning in warnings {
            tracing::warn!("{warning}");
            warn(warning);
        }
        Ok(kept)
    }

    /// The probe settings of a command: its flags over the file's.
    pub fn probe_settings(&self, flags: &ProbeFlags, ssh_extra_args: Vec<String>) -> ProbeSettings {
        let choice = self.probe.with_flags(flags.timeout, flags.concurrency);
        let mut settings = ProbeSettings::new(
            choice.timeout,
            choice.concurrency,
            self.ssh_settings(ssh_extra_args),
        );
        settings.ask_trust = choice.ssh_trust;
        settings
    }

    /// How rbtop runs ssh: `NIX_SSHOPTS`'s words and the host-key policy.
    pub fn ssh_settings(&self, ssh_extra_args: Vec<String>) -> SshSettings {
        SshSettings::new(ssh_extra_args, self.probe.host_key_policy)
    }

    /// Canary builds as the probes run: their SSH and concurrency, the
    /// file's `[jobs]`, and a deadline per host (`--build-timeout`, else
    /// the canary's default). The one place `check --build` and `serve
    /// --build-every` take them from.
    pub fn canary_settings(
        &self,
        probe: &ProbeSettings,
        build_timeout: Option<f64>,
    ) -> rbtop::canary::CanarySettings {
        rbtop::canary::CanarySettings::new(
            build_timeout.map_or(rbtop::canary::DEFAULT_TIMEOUT, Duration::from_secs_f64),
            probe.concurrency,
            self.job_settings(probe.ssh.clone()),
        )
    }

    /// What jobs need: the file's `[jobs]`, SSH as probes run it, this
    /// machine's Nix.
    pub fn job_settings(&self, ssh: SshSettings) -> JobSettings {
        JobSettings {
            graces: self.jobs.graces,
            line_cap: self.jobs.line_cap,
            log_dir: self.jobs.log_directory.clone(),
            ssh,
            local_nix: NixVersion::local(),
            env: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> GlobalArgs {
        GlobalArgs::default()
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("[log]\nlevle = \"debug\"\n").unwrap_err();
        assert!(err.contains("levle"), "{err}");
        let err = parse("colour = true\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"));
        assert_eq!(parse(text).unwrap(), FileConfig::default());
    }

    #[test]
    fn serve_settings_come_from_the_file_and_bad_values_are_named() {
        let file = parse(
            "[serve]\nlisten = \"[::1]:9100\"\nwrite_machines = \"/run/rbtop/machines\"\nout_after = 3\nbuild_every = 900\n",
        )
        .unwrap();
        let settings = Settings::layer(&cli(), &file, None, &Environment::default());
        assert_eq!(settings.serve.listen, "[::1]:9100".parse().unwrap());
        assert_eq!(
            settings.serve.write_machines.as_deref(),
            Some(Path::new("/run/rbtop/machines"))
        );
        assert_eq!(settings.serve.hysteresis.out_after, 3);
        assert_eq!(settings.serve.hysteresis.back_after, 2);
        assert_eq!(
            settings.serve.build_every,
            Some(std::time::Duration::from_secs(900))
        );
        let defaults = Settings::layer(
            &cli(),
            &FileConfig::default(),
            None,
            &Environment::default(),
        );
        assert_eq!(defaults.serve.listen, DEFAULT_LISTEN.parse().unwrap());
        let err = parse("[serve]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(
            err.contains("[serve] listen") && err.contains("ADDRESS:PORT"),
            "{err}"
        );
        let err = parse("[serve]\nbuild_every = 5\n").unwrap_err();
        assert!(
            err.contains("[serve] build_every = 5: must be at least 60 seconds"),
            "{err}"
        );
        let err = parse("[serve]\nback_after = 0\n").unwrap_err();
        assert!(
            err.contains("[serve] back_after must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn tilde_means_home_in_paths() {
        let home = Path::new("/home/op");
        assert_eq!(
            expand_tilde(Path::new("~/.local/state/rbtop"), Some(home)),
            Path::new("/home/op/.local/state/rbtop")
        );
        assert_eq!(expand_tilde(Path::new("~"), Some(home)), home);
        assert_eq!(
            expand_tilde(Path::new("/etc/~x"), Some(home)),
            Path::new("/etc/~x")
        );
        assert_eq!(expand_tilde(Path::new("~/m"), None), Path::new("~/m"));
    }

    #[test]
    fn probe_settings_come_from_the_file_and_flags_win() {
        let file =
            parse("[probe]\ntimeout = 2.5\nconcurrency = 8\nhost_key_checking = \"accept-new\"\n")
                .unwrap();
        let settings = Settings::layer(&cli(), &file, None, &Environment::default());
        assert_eq!(settings.probe.timeout, Duration::from_millis(2500));
        assert_eq!(settings.probe.concurrency, 8);
        assert_eq!(settings.probe.host_key_policy, HostKeyPolicy::AcceptNew);
        let flagged = settings.probe.with_flags(Some(3.0), None);
        assert_eq!(flagged.timeout, Duration::from_secs(3));
        assert_eq!(flagged.concurrency, 8);
        let defaults = Settings::layer(
            &cli(),
            &FileConfig::default(),
            None,
            &Environment::default(),
        )
        .probe;
        assert_eq!(defaults.timeout, Duration::from_secs(10));
        assert_eq!(defaults.concurrency, 64);
        assert_eq!(defaults.host_key_policy, HostKeyPolicy::Strict);
    }

    #[test]
    fn bad_probe_settings_are_named() {
        assert!(
            parse("[probe]\ntimeout = 0\n")
                .unwrap_err()
                .contains("timeout")
        );
        assert!(
            parse("[probe]\nconcurrency = 0\n")
                .unwrap_err()
                .contains("concurrency")
        );
        let err = parse("[probe]\nhost_key_checking = \"no\"\n").unwrap_err();
        assert!(err.contains("accept-new"), "{err}");
    }

    #[test]
    fn dashboard_refresh_and_keys_come_from_the_file() {
        let file = parse(
            "[dashboard]\nrefresh_interval = 2.5\n[keys]\nquit = \"x\"\ndown = [\"j\", \"ctrl-n\"]\n",
        )
        .unwrap();
        let settings = Settings::layer(&cli(), &file, None, &Environment::default());
        assert_eq!(settings.refresh, Duration::from_millis(2500));
        assert_eq!(settings.keys["quit"], ["x"]);
        assert_eq!(settings.keys["down"], ["j", "ctrl-n"]);
        let defaults = Settings::layer(
            &cli(),
            &FileConfig::default(),
            None,
            &Environment::default(),
        );
        assert_eq!(defaults.refresh, Duration::from_secs(5));
        assert!(defaults.keys.is_empty());
        let err = parse("[dashboard]\nrefresh_interval = -1\n").unwrap_err();
        assert!(err.contains("refresh_interval"), "{err}");
        let err = parse("[dashboard]\nrefresh_interval = 0.1\n").unwrap_err();
        assert!(err.contains("at least 0.5"), "{err}");
    }

    #[test]
    fn jobs_settings_come_from_the_file_and_bad_ones_are_named() {
        let file = parse(
            "[jobs]\ncommand = \"nix-build\"\nstall_after = 90\nupload_lock_after = 120\nlog_lines = 50\ninterrupt_grace = 1.5\nterminate_grace = 2\n",
        )
        .unwrap();
        let jobs = Settings::layer(&cli(), &file, None, &Environment::default()).jobs;
        assert_eq!(jobs.tool, rbtop::jobs::launch::BuildTool::NixBuildLegacy);
        assert_eq!(jobs.stall_after, Duration::from_secs(90));
        assert_eq!(jobs.upload_lock_after, Duration::from_secs(120));
        assert_eq!(jobs.line_cap, 50);
        assert_eq!(jobs.graces.interrupt, Duration::from_millis(1500));
        assert_eq!(jobs.graces.terminate, Duration::from_secs(2));
        let defaults = Settings::layer(
            &cli(),
            &FileConfig::default(),
            None,
            &Environment::default(),
        )
        .jobs;
        assert_eq!(defaults.tool, rbtop::jobs::launch::BuildTool::NixBuild);
        assert_eq!(defaults.stall_after, Duration::from_secs(600));
        assert_eq!(defaults.upload_lock_after, Duration::from_secs(300));
        assert_eq!(defaults.line_cap, 10_000);
        for (text, named) in [
            ("[jobs]\ncommand = \"make\"\n", "[jobs] command"),
            ("[jobs]\nstall_after = 0\n", "stall_after"),
            ("[jobs]\nterminate_grace = -1\n", "terminate_grace"),
            ("[jobs]\nlog_lines = 0\n", "log_lines"),
            ("[jobs]\nlog_lines = 5\nbogus = 1\n", "bogus"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn builders_and_file_together_are_refused() {
        let err = parse("[machines]\nbuilders = \"ssh://a\"\nfile = \"/m\"\n").unwrap_err();
        assert!(err.contains("both"), "{err}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = parse("[machines]\nfile = \"/from/file\"\n[log]\nlevel = \"debug\"\n").unwrap();
        let defaults = Settings::layer(
            &cli(),
            &FileConfig::default(),
            None,
            &Environment::default(),
        );
        assert_eq!(defaults.source, SourceChoice::NixConf);
        assert_eq!(defaults.log_filter, "info");

        let from_file = Settings::layer(&cli(), &file, None, &Environment::default());
        assert_eq!(from_file.source, SourceChoice::File("/from/file".into()));
        assert_eq!(from_file.log_filter, "debug");

        let env = Settings::layer(
            &cli(),
            &file,
            None,
            &Environment {
                log: Some("warn".into()),
                ..Environment::default()
            },
        );
        assert_eq!(env.log_filter, "warn");

        let flags = GlobalArgs {
            builders: Some("ssh://a".into()),
            log_level: Some("trace".into()),
            ..cli()
        };
        let layered = Settings::layer(
            &flags,
            &file,
            None,
            &Environment {
                log: Some("warn".into()),
                ..Environment::default()
            },
        );
        assert_eq!(layered.log_filter, "trace");
        assert_eq!(
            layered.source,
            SourceChoice::Builders {
                text: "ssh://a".into(),
                origin: Origin::BuildersFlag
            }
        );
    }
}
