//! A builder's facts (kernel, CPUs, load, memory, store space, uptime),
//! gathered by one long-lived POSIX shell loop on the host.
//!
//! The loop answers one report per line it reads on stdin. The request word
//! says what to include: [`REQUEST_QUICK`] (or an empty line, or any word it
//! does not know) gets the static facts and what Linux's `/proc` gives to
//! shell built-ins (load, memory, uptime), so on Linux it starts **no
//! process**; [`REQUEST_SPACE`] also gets the store's free space, which costs
//! one `df`. The static facts are read once, before the loop. `sysctl` covers
//! macOS and the BSDs, at the price of a few processes per report there.

use serde::Serialize;

use crate::remote::listing::{self, ListingError, ProcessListing};

/// The request for a report without the store's free space: no process on Linux.
pub(crate) const REQUEST_QUICK: &str = "quick";
/// The request for a report with the store's free space: one `df` on the host.
pub(crate) const REQUEST_SPACE: &str = "space";
/// The third word of a request that also lists the host's processes, for
/// the builds running there: one `grep` of their `stat` on the host.
pub(crate) const REQUEST_BUILDS: &str = "builds";
/// The third word when rbtop's last listing of this host showed nothing
/// building: the loop lists again (one `grep`) only if a process created
/// since still runs; else it answers [`LISTING_UNCHANGED`] with built-ins only.
pub(crate) const REQUEST_BUILDS_IF_NEW: &str = "builds-if-new";
/// The builds section of a `builds-if-new` answer when nothing was created.
pub(crate) const LISTING_UNCHANGED: &str = "unchanged";
/// `detail NONCE PID...`: those processes' uid, serving words and four
/// environment variables (one `grep` on the host), whether each sees the
/// host's own store, and the build directories.
pub(crate) const REQUEST_DETAIL: &str = "detail";

/// The line that ends one report.
pub(crate) const END_MARKER: &str = "end";

/// One report. Every field is optional: a host without `/proc` or `df` still
/// reports what it can.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facts {
    pub arch: Option<String>,
    pub kernel: Option<String>,
    pub cpus: Option<u32>,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    /// Bytes.
    pub mem_total: Option<u64>,
    /// Bytes.
    pub mem_available: Option<u64>,
    /// Bytes free on the store's filesystem. A report asked with
    /// `REQUEST_QUICK` has none; the facts link fills in the figure of its
    /// last `REQUEST_SPACE` report (at most its space interval old).
    pub store_free: Option<u64>,
    pub uptime_s: Option<u64>,
    /// `nix-store --version` of the host, when asked for (ssh:// says no version otherwise).
    #[serde(skip)]
    pub nix_version: Option<String>,
    /// The host's processes, when the report was asked to list them, or why
    /// they could not be listed.
    #[serde(skip)]
    pub processes: Option<Result<ProcessListing, ListingError>>,
}

impl Facts {
    /// Read one report (the lines before `END_MARKER`). Unknown keys and
    /// unparsable values are ignored: a fact is missing, never made up.
    pub fn parse(report: &str) -> Facts {
        Facts::parse_with(report, "")
    }

    /// [`Facts::parse`] of a report whose blocks end with `nonce` (see
    /// `script::FACTS`); the facts come before the builds section.
    pub fn parse_with(report: &str, nonce: &str) -> Facts {
        let (report, section) = match report.split_once(&format!("{}\n", listing::BEGIN)) {
            Some((facts, rest)) => (facts, Some(rest)),
            None => (report, None),
        };
        let mut facts = Facts {
            processes: section.map(|section| ProcessListing::parse(section, nonce)),
            ..Facts::default()
        };
        for (key, value) in report
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(_, v)| !v.is_empty())
        {
            match key {
                "nix" => facts.nix_version = version_of(value),
                "kernel" => facts.kernel = Some(value.to_string()),
                "arch" => facts.arch = Some(value.to_string()),
                "cpus" => facts.cpus = value.parse().ok(),
                "load" => facts.load = parse_load(value),
                "mem_total_kib" => facts.mem_total = kib(value),
                "mem_available_kib" => facts.mem_available = kib(value),
                "mem_total" => facts.mem_total = value.parse().ok(),
                "store_free_kib" => facts.store_free = kib(value),
                "uptime_s" => facts.uptime_s = value.parse().ok(),
                _ => {}
            }
        }
        facts
    }

    /// Load average per CPU over the last minute, the figure that says how busy a host is.
    pub fn load_per_cpu(&self) -> Option<f64> {
        let load = self.load?;
        let cpus = self.cpus.filter(|&c| c > 0)?;
        Some(load[0] / f64::from(cpus))
    }
}

/// `nix-store (Nix) 2.8.0` → `2.8.0`.
fn version_of(line: &str) -> Option<String> {
    line.split_whitespace()
        .last()
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

fn parse_load(value: &str) -> Option<[f64; 3]> {
    let numbers: Vec<f64> = value
        .split_whitespace()
        .map(|w| w.replace(',', "."))
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    <[f64; 3]>::try_from(numbers.get(..3)?).ok()
}

fn kib(value: &str) -> Option<u64> {
    value.parse::<u64>().ok()?.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn a_linux_report_is_read_in_bytes() {
        let facts = Facts::parse(
            "nix=nix-store (Nix) 2.8.0\nkernel=Linux 6.1.0-18-amd64\narch=x86_64\ncpus=2\n\
             load=0.52 0.58 0.59\nmem_total_kib=24605152\nmem_available_kib=20000000\n\
             store_free_kib=81920\nuptime_s=3600\n",
        );
        assert_eq!(facts.nix_version.as_deref(), Some("2.8.0"));
        assert_eq!(facts.kernel.as_deref(), Some("Linux 6.1.0-18-amd64"));
        assert_eq!(facts.arch.as_deref(), Some("x86_64"));
        assert_eq!(facts.cpus, Some(2));
        assert_eq!(facts.load, Some([0.52, 0.58, 0.59]));
        assert_eq!(facts.mem_total, Some(24_605_152 * 1024));
        assert_eq!(facts.mem_available, Some(20_000_000 * 1024));
        assert_eq!(facts.store_free, Some(81_920 * 1024));
        assert_eq!(facts.uptime_s, Some(3600));
        assert_eq!(facts.load_per_cpu(), Some(0.26));
    }

    #[test]
    fn a_macos_report_uses_sysctl_forms() {
        // `sysctl -n vm.loadavg` prints `{ 1,52 1,60 1,70 }` under some locales.
        let facts = Facts::parse("load= 1,52 1,60 1,70 \nmem_total=17179869184\ncpus=8\n");
        assert_eq!(facts.load, Some([1.52, 1.6, 1.7]));
        assert_eq!(facts.mem_total, Some(17_179_869_184));
        assert_eq!(facts.mem_available, None);
    }

    #[test]
    fn missing_or_garbled_facts_stay_missing() {
        let facts = Facts::parse("nix=\ncpus=many\nload=1 2\nstore_free_kib=-5\nnoise\n=x\n");
        assert_eq!(facts, Facts::default());
        assert_eq!(facts.load_per_cpu(), None);
        assert_eq!(version_of("sh: nix-store: not found"), None);
    }

    /// Runs the real script here with `sh`, feeds it `requests` (then EOF, which
    /// ends the loop) and returns its reports.
    fn run_script(shell: &[&str], extra: &[&str], path: Option<&Path>, requests: &str) -> String {
        let (program, first) = shell.split_first().unwrap();
        let mut command = Command::new(program);
        command
            .args(first)
            .args(crate::remote::script::FACTS.sh_args(["/"].iter().chain(extra)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let output = command
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(requests.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The reports in the loop's output: each ends with a line `end` or
    /// `end NONCE`.
    fn reports(text: &str) -> Vec<String> {
        let mut reports = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if line == "end" || line.starts_with("end ") {
                reports.push(std::mem::take(&mut current));
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        reports
    }

    #[test]
    fn the_script_runs_here_and_reports_every_fact() {
        // This machine is Linux with /proc: every fact must come out of the real script.
        let text = run_script(
            &["sh"],
            &["env", "nix-store"],
            None,
            &format!("{REQUEST_QUICK}\n{REQUEST_SPACE}\n\n"),
        );
        let reports = reports(&text);
        assert_eq!(reports.len(), 3, "one report per request line: {text}");
        let facts = Facts::parse(&reports[1]);
        // Every word of a multi-word program is run: `env nix-store --version`.
        let local = Command::new("nix-store").arg("--version").output().unwrap();
        let local = String::from_utf8(local.stdout).unwrap();
        assert!(
            local.contains(facts.nix_version.as_deref().unwrap()),
            "{text}"
        );
        assert!(facts.cpus.unwrap() >= 1, "{text}");
        assert!(facts.load.is_some() && facts.uptime_s.is_some(), "{text}");
        assert!(facts.mem_available.unwrap() <= facts.mem_total.unwrap());
        assert!(facts.arch.is_some() && facts.kernel.is_some());
        // Only `space` asks df.
        assert!(facts.store_free.unwrap() > 0, "{text}");
        for quick in [&reports[0], &reports[2]] {
            let facts = Facts::parse(quick);
            assert_eq!(facts.store_free, None, "{quick}");
            assert!(!quick.contains("store_free"), "{quick}");
            assert!(facts.load.is_some() && facts.mem_total.is_some(), "{quick}");
        }
    }

    /// df's line is read from the left up to the capacity (`NN%`), so blanks
    /// (or a glob character) in the device name do not shift the figure, and
    /// the header is passed over. A `df` that prints as GNU, BSD and busybox
    /// do with `-P` stands in, first in `PATH`, to make the line unusual.
    #[test]
    fn df_is_read_past_the_header_and_blanks_in_the_device_name() {
        let bin = tempfile::tempdir().unwrap();
        let df = bin.path().join("df");
        std::fs::write(
            &df,
            "#!/bin/sh\n\
             echo 'Filesystem     1024-blocks     Used Available Capacity Mounted on'\n\
             echo 'my * odd dev 7 264212084 19116596  76169292      21% /mnt/a b 5%'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&df, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        let text = run_script(&["sh"], &[], Some(Path::new(&path)), "space\n");
        assert_eq!(
            Facts::parse(&text).store_free,
            Some(76_169_292 * 1024),
            "{text}"
        );
    }

    /// Unknown request words are quick requests, and the rest of a line is ignored:
    /// a newer rbtop may ask for more than this script knows.
    #[test]
    fn unknown_request_words_get_a_quick_report() {
        let text = run_script(&["sh"], &[], None, "tomorrow\nspace N1 please\n");
        let reports = reports(&text);
        assert_eq!(reports.len(), 2, "{text}");
        assert!(
            text.ends_with("end N1\n"),
            "the nonce ends the answer: {text}"
        );
        assert_eq!(Facts::parse(&reports[0]).store_free, None, "{text}");
        assert!(Facts::parse(&reports[1]).store_free.is_some(), "{text}");
    }

    /// A quick report needs no external command at all: with `PATH` an empty
    /// directory (so any command but a shell built-in fails with "not found"),
    /// load, memory and uptime still come, and on Linux so do the kernel and
    /// the CPUs (from /proc and /sys); only the free space (`df`) is missing.
    #[test]
    fn a_quick_report_needs_only_built_ins() {
        let empty = tempfile::tempdir().unwrap();
        let text = run_script(
            &["/bin/sh"],
            &[],
            Some(empty.path()),
            &format!("{REQUEST_QUICK}\n{REQUEST_SPACE}\n"),
        );
        let reports = reports(&text);
        assert_eq!(reports.len(), 2, "{text}");
        for report in &reports {
            let facts = Facts::parse(report);
            assert!(facts.load.is_some(), "{text}");
            assert!(
                facts.mem_total.is_some() && facts.mem_available.is_some(),
                "{text}"
            );
            assert!(facts.uptime_s.is_some(), "{text}");
            assert!(facts.kernel.is_some() && facts.cpus.is_some(), "{text}");
            assert_eq!(facts.store_free, None, "{text}");
        }
    }

    /// How many processes the loop's shell starts: strace counts its
    /// fork/vfork/clone/clone3 calls (without -f: the shell's own calls are
    /// what matter, as every process of the loop is started by one of them,
    /// and the children's threads stay out of the count). This is exact,
    /// unlike a machine-wide counter. The startup (static facts) forks the
    /// same way every run, so the difference between two runs is what their
    /// extra requests cost.
    #[cfg(target_os = "linux")]
    fn forks_of(requests: &str) -> usize {
        forks_in(&[], requests)
    }

    /// [`forks_of`] with the loop run under `prefix` (such as a private pid namespace).
    #[cfg(target_os = "linux")]
    fn forks_in(prefix: &[&str], requests: &str) -> usize {
        let trace = tempfile::NamedTempFile::new().unwrap();
        let trace_path = trace.path().to_str().unwrap().to_string();
        let strace = [
            "strace",
            "-qq",
            "-e",
            "signal=none",
            "-e",
            "trace=fork,vfork,clone,clone3",
            "-o",
            &trace_path,
            "sh",
        ];
        if Command::new("strace").arg("-V").output().is_err() {
            panic!(
                "strace is not installed, and this test counts the facts loop's forks with it: \
                 apt-get install strace (in the flake's checks: pkgs.strace)"
            );
        }
        let command: Vec<&str> = prefix.iter().chain(strace.iter()).copied().collect();
        let text = run_script(&command, &["env", "nix-store"], None, requests);
        let asked = requests.lines().count();
        assert_eq!(reports(&text).len(), asked, "{text}");
        let trace = std::fs::read_to_string(trace.path()).unwrap();
        let forks = trace
            .lines()
            .filter(|l| {
                ["fork(", "vfork(", "clone(", "clone3("]
                    .iter()
                    .any(|c| l.starts_with(c))
            })
            .count();
        assert!(
            forks > 0,
            "the startup forks (uname, getconf): is strace tracing? {trace}"
        );
        forks
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn quick_reports_start_no_process_and_space_reports_one() {
        let startup = forks_of("\n");
        let quick = format!("{REQUEST_QUICK}\n").repeat(20) + "\n\nunknown\n";
        assert_eq!(
            forks_of(&format!("\n{quick}")),
            startup,
            "23 more quick requests must fork nothing"
        );
        // The count can see the loop fork: each `space` request is one `df`.
        let space = format!("{REQUEST_SPACE}\n").repeat(3);
        assert_eq!(forks_of(&format!("\n{space}")), startup + 3);
        // Listing the processes costs one grep each time.
        let builds = format!("{REQUEST_QUICK} N {REQUEST_BUILDS}\n").repeat(3);
        assert_eq!(forks_of(&format!("\n{builds}")), startup + 3);
    }

    /// A warm refresh with the builds listing on and nothing building starts
    /// no process: `builds-if-new` lists (one grep) only when a process
    /// created since the last listing still runs. Run in a private pid
    /// namespace, where only the loop's own processes are new (fleet hosts
    /// share this busy machine's); a user namespace makes us root there, so
    /// no privilege is needed.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_host_is_listed_once_then_answered_unchanged_without_a_process() {
        let private = [
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
        ];
        let startup = forks_in(&private, "\n");
        let idle = format!("{REQUEST_QUICK} N {REQUEST_BUILDS_IF_NEW}\n").repeat(5);
        assert_eq!(
            forks_in(&private, &format!("\n{idle}")),
            startup + 1,
            "the first listing greps, the four after it answer unchanged"
        );
        // A full `builds` request always lists.
        let full = format!("{REQUEST_QUICK} N {REQUEST_BUILDS}\n").repeat(2);
        assert_eq!(
            forks_in(&private, &format!("\n{full}{idle}")),
            startup + 2,
            "after a full listing, `builds-if-new` needs no grep"
        );
    }

    /// The cold probe's form (`--then-exec`): one report and then the store
    /// command in the same process, the first report costing only the
    /// version (one command substitution) and `df`: no `uname`, `getconf` or
    /// `head`. The store command here is `cat`, exec'd without a fork.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_once_form_reports_then_execs_with_two_forks() {
        let trace = tempfile::NamedTempFile::new().unwrap();
        let trace_path = trace.path().to_str().unwrap().to_string();
        let mut command = Command::new("strace");
        command
            .args(["-qq", "-e", "signal=none", "-e"])
            .args(["trace=fork,vfork,clone,clone3", "-o", &trace_path])
            .args(["sh", "-c", crate::remote::script::FACTS.text, "rbtop-facts"])
            .args(["/", "--then-exec", "N1", "1", "env", "-", "0", "0", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("strace (apt-get install strace)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"store bytes")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (report, rest) = text.split_once("end N1\n").expect("a report");
        assert!(report.starts_with("begin N1\n"), "{text}");
        let facts = Facts::parse(report);
        assert!(
            facts.kernel.is_some() && facts.store_free.is_some(),
            "{text}"
        );
        assert_eq!(rest, "store bytes", "the store command got stdin untouched");
        let trace = std::fs::read_to_string(trace.path()).unwrap();
        let forks = trace
            .lines()
            .filter(|l| {
                ["fork(", "vfork(", "clone("]
                    .iter()
                    .any(|c| l.starts_with(c))
            })
            .count()
            + trace.lines().filter(|l| l.starts_with("clone3(")).count();
        assert_eq!(forks, 2, "the version and df only: {trace}");
    }

    /// With daemon words (TRUSTED over ssh://): the "daemon" gets the hello
    /// on a pipe of its own, its answer comes back in hex in the report, and
    /// the store command still gets the channel's bytes untouched. The
    /// daemon here is `head -c 40`: it answers with the 40 bytes it was fed,
    /// and exits while its input is still open, as nix-daemon does after
    /// the invalid op.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_once_form_relays_the_daemons_answer_and_leaves_stdin_to_the_store() {
        let hello = crate::probe::trust::hello_format();
        let mut child = Command::new("sh")
            .args(["-c", crate::remote::script::FACTS.text, "rbtop-facts"])
            .args(["/", "--then-exec", "N1", "1", "-", &hello, "4096", "3"])
            .args(["head", "-c", "40", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"store bytes")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (report, rest) = text.split_once("end N1\n").expect("a report");
        assert_eq!(rest, "store bytes", "the store command got stdin untouched");
        let mut fed = crate::protocol::worker::at_once_hello();
        fed.extend_from_slice(&[0; 8]);
        let hex: String = fed.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            report.lines().any(|l| l == format!("daemon_hello={hex}")),
            "{text}"
        );
        // The facts are all there too.
        let facts = Facts::parse(report);
        assert!(
            facts.kernel.is_some() && facts.store_free.is_some(),
            "{text}"
        );
    }

    /// A store program whose version says Nix < 2.15 (worker protocol 1.34,
    /// no trust field): its daemon is not asked, and stdin is still the store's.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_nix_older_than_2_15_is_not_asked() {
        let hello = crate::probe::trust::hello_format();
        for (version, asked) in [("2.8.0", false), ("2.14.1", false), ("2.15.0", true)] {
            // The "store": prints its version (`--version` lands in $0).
            let store = format!("echo 'nix-store (Nix) {version}'");
            let out = Command::new("sh")
                .args(["-c", crate::remote::script::FACTS.text, "rbtop-facts"])
                .args(["/", "--then-exec", "N1", "3", "-", &hello, "4096", "3"])
                .args(["head", "-c", "40", "sh", "-c", &store])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let (report, _) = text.split_once("end N1\n").expect("a report");
            assert_eq!(
                report.contains("daemon_hello="),
                asked,
                "Nix {version}: {text}"
            );
            assert_eq!(
                Facts::parse(report).nix_version.as_deref(),
                Some(version),
                "{text}"
            );
        }
    }
}
