//! A builder's facts (kernel, CPUs, load, memory, store space, uptime),
//! gathered by one long-lived POSIX shell loop on the host.
//!
//! The loop answers one report per line it reads on stdin, so a refresh costs
//! a line and a `df`, not a new SSH session or process tree. The static facts
//! are read once, before the loop. Linux's `/proc` is read with shell
//! built-ins; `sysctl` covers macOS and the BSDs.

use serde::Serialize;

/// Runs as `sh -c FACTS_SCRIPT rbtop-facts <store dir> [nix-store words...]`;
/// the words (a `remote-program`, possibly several) are asked `--version`.
pub const FACTS_SCRIPT: &str = r#"
store="$1"
shift
nix=""
if [ $# -gt 0 ]; then nix=$("$@" --version 2>/dev/null | head -n 1); fi
kernel=$(uname -sr 2>/dev/null)
arch=$(uname -m 2>/dev/null)
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null)
[ -d "$store" ] || store=/nix
[ -d "$store" ] || store=/
while read -r _request; do
  printf 'nix=%s\nkernel=%s\narch=%s\ncpus=%s\n' "$nix" "$kernel" "$arch" "$cpus"
  if [ -r /proc/loadavg ]; then
    read -r l1 l5 l15 _rest < /proc/loadavg
    printf 'load=%s %s %s\n' "$l1" "$l5" "$l15"
  else
    printf 'load=%s\n' "$(sysctl -n vm.loadavg 2>/dev/null | tr -d '{}')"
  fi
  if [ -r /proc/meminfo ]; then
    while read -r key value _unit; do
      case "$key" in
        MemTotal:) printf 'mem_total_kib=%s\n' "$value" ;;
        MemAvailable:) printf 'mem_available_kib=%s\n' "$value" ;;
      esac
    done < /proc/meminfo
  else
    printf 'mem_total=%s\n' "$(sysctl -n hw.memsize 2>/dev/null)"
  fi
  printf 'store_free_kib=%s\n' "$(df -Pk "$store" 2>/dev/null | awk 'NR==2 {print $4}')"
  if [ -r /proc/uptime ]; then
    read -r up _idle < /proc/uptime
    printf 'uptime_s=%s\n' "${up%%.*}"
  else
    boot=$(sysctl -n kern.boottime 2>/dev/null | sed -n 's/.*sec = \([0-9]*\).*/\1/p')
    [ -n "$boot" ] && printf 'uptime_s=%s\n' "$(( $(date +%s) - boot ))"
  fi
  echo end
done
"#;

/// The line that ends one report.
pub const END_MARKER: &str = "end";

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
    /// Bytes free on the store's filesystem.
    pub store_free: Option<u64>,
    pub uptime_s: Option<u64>,
    /// `nix-store --version` of the host, when asked for (ssh:// says no version otherwise).
    #[serde(skip)]
    pub nix_version: Option<String>,
}

impl Facts {
    /// Read one report (the lines before [`END_MARKER`]). Unknown keys and
    /// unparsable values are ignored: a fact is missing, never made up.
    pub fn parse(report: &str) -> Facts {
        let mut facts = Facts::default();
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

    #[test]
    fn the_script_runs_here_and_reports_every_fact() {
        // This machine is Linux with /proc: every fact must come out of the real script.
        let output = std::process::Command::new("sh")
            .args(["-c", FACTS_SCRIPT, "rbtop-facts", "/", "env", "nix-store"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"\n\n")?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let reports: Vec<&str> = text.split_terminator("end\n").collect();
        assert_eq!(reports.len(), 2, "one report per request line: {text}");
        let facts = Facts::parse(reports[1]);
        // Every word of a multi-word program is run: `env nix-store --version`.
        let local = std::process::Command::new("nix-store")
            .arg("--version")
            .output()
            .unwrap();
        let local = String::from_utf8(local.stdout).unwrap();
        assert!(
            local.contains(facts.nix_version.as_deref().unwrap()),
            "{text}"
        );
        assert!(facts.cpus.unwrap() >= 1, "{text}");
        assert!(facts.load.is_some() && facts.uptime_s.is_some(), "{text}");
        assert!(facts.mem_available.unwrap() <= facts.mem_total.unwrap());
        assert!(facts.store_free.is_some() && facts.arch.is_some() && facts.kernel.is_some());
    }
}
