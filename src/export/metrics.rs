//! The fleet as Prometheus metrics (text format 0.0.4, which `promtool
//! check metrics` and every scraper read), with the official
//! `prometheus-client` crate. Names follow Prometheus's conventions: base
//! units, `_info` for metadata, labels `host` and `uri` only, never a
//! derivation path or anything else of high cardinality.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::canary::{CanaryResult, CanaryStatus};
use crate::dashboard::HostState;
use crate::machines::Machine;
use crate::probe::HostReport;
use crate::remote_builds::{Client, RemoteBuild};

/// Every metric [`render`] can export, for the alert rules' and
/// dashboards' tests.
pub const NAMES: [&str; 17] = [
    "rbtop_builder_up",
    "rbtop_builder_probe_duration_seconds",
    "rbtop_builder_failure_info",
    "rbtop_builder_consecutive_failures",
    "rbtop_builder_last_probe_timestamp_seconds",
    "rbtop_builder_info",
    "rbtop_builder_max_jobs",
    "rbtop_builder_speed_factor",
    "rbtop_builder_busy_slots",
    "rbtop_builder_load1",
    "rbtop_builder_memory_available_bytes",
    "rbtop_builder_store_free_bytes",
    "rbtop_builder_builds_running",
    "rbtop_builder_orphaned_builds",
    "rbtop_builder_oldest_build_age_seconds",
    "rbtop_live_machines_kept",
    "rbtop_live_machines_all_down",
];

/// The canary's metrics: exported for a builder once a canary build was
/// tried there (`rbtop serve --build-every`, `rbtop check --build
/// --format prometheus`), so absent on most scrapes of most setups.
pub const CANARY_NAMES: [&str; 2] = [
    "rbtop_builder_canary_success",
    "rbtop_builder_canary_duration_seconds",
];

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the metrics of one builder are made of.
#[derive(Clone, Debug)]
pub struct BuilderSample<'a> {
    pub machine: &'a Machine,
    /// The latest finished probe; `None` before the first (then only the
    /// machines line's own figures are exported).
    pub report: Option<&'a HostReport>,
    pub probe_duration: Option<Duration>,
    pub consecutive_failures: u32,
    pub last_probe: Option<SystemTime>,
    /// This machine's build slots held on the builder.
    pub busy_slots: Option<u32>,
    /// The builds running there; `None` when they could not be listed.
    pub builds: Option<&'a [RemoteBuild]>,
    /// Whether the live machines file keeps it (`rbtop serve --write-machines`).
    pub live_kept: Option<bool>,
    /// Its latest canary build that was tried (not skipped).
    pub canary: Option<&'a CanaryResult>,
}

impl<'a> BuilderSample<'a> {
    /// A host as the refresh engine knows it.
    pub fn of_host(host: &'a HostState) -> BuilderSample<'a> {
        BuilderSample {
            machine: &host.machine,
            report: host.report.as_ref(),
            probe_duration: host.probe_duration,
            consecutive_failures: host.failures,
            last_probe: host.reported_at,
            busy_slots: host.busy_slots(),
            builds: match &host.builds {
                Some(Ok(list)) => Some(list),
                _ => None,
            },
            live_kept: None,
            canary: host
                .canary
                .as_ref()
                .and_then(|c| c.result())
                .filter(|r| r.tried()),
        }
    }
}

/// Fleet-wide figures besides the builders'.
#[derive(Clone, Debug, Default)]
pub struct FleetExtras {
    /// With a live machines file: whether every builder is down (the last
    /// file is then kept, as Nix with no builders would build locally).
    pub live_all_down: Option<bool>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
    uri: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    host: String,
    uri: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    host: String,
    uri: String,
    nix_version: String,
    protocol: String,
    trusted: String,
}

type IntFamily = Family<HostLabels, Gauge>;
type FloatFamily = Family<HostLabels, Gauge<f64, AtomicU64>>;

/// Every builder family, registered once per rendering.
struct Families {
    up: IntFamily,
    probe_duration: FloatFamily,
    failure: Family<FailureLabels, Gauge>,
    consecutive_failures: IntFamily,
    last_probe: FloatFamily,
    info: Family<InfoLabels, Gauge>,
    max_jobs: IntFamily,
    speed_factor: FloatFamily,
    busy_slots: IntFamily,
    load1: FloatFamily,
    memory_available: IntFamily,
    store_free: IntFamily,
    builds_running: IntFamily,
    orphaned_builds: IntFamily,
    oldest_build_age: IntFamily,
    live_kept: IntFamily,
    canary_success: IntFamily,
    canary_duration: FloatFamily,
}

impl Families {
    fn register(registry: &mut Registry) -> Families {
        let families = Families {
            up: Family::default(),
            probe_duration: Family::default(),
            failure: Family::default(),
            consecutive_failures: Family::default(),
            last_probe: Family::default(),
            info: Family::default(),
            max_jobs: Family::default(),
            speed_factor: Family::default(),
            busy_slots: Family::default(),
            load1: Family::default(),
            memory_available: Family::default(),
            store_free: Family::default(),
            builds_running: Family::default(),
            orphaned_builds: Family::default(),
            oldest_build_age: Family::default(),
            live_kept: Family::default(),
            canary_success: Family::default(),
            canary_duration: Family::default(),
        };
        let f = &families;
        macro_rules! add {
            ($name:literal, $help:literal, $family:expr) => {
                registry.register($name, $help, $family.clone())
            };
        }
        add!(
            "rbtop_builder_up",
            "1 when the builder's store answered its handshake on the latest probe, else 0",
            f.up
        );
        add!(
            "rbtop_builder_probe_duration_seconds",
            "How long the latest probe took",
            f.probe_duration
        );
        add!(
            "rbtop_builder_failure_info",
            "1 for the kind of the latest failure (refused, timeout, dns, auth, hostkey, nonix, protocol, error); absent when up",
            f.failure
        );
        add!(
            "rbtop_builder_consecutive_failures",
            "Failed probes in a row",
            f.consecutive_failures
        );
        add!(
            "rbtop_builder_last_probe_timestamp_seconds",
            "When the latest probe finished (Unix time)",
            f.last_probe
        );
        add!(
            "rbtop_builder_info",
            "The builder's Nix version, store protocol and whether it trusts this user (always 1)",
            f.info
        );
        add!(
            "rbtop_builder_max_jobs",
            "Column #3 of the machines line: build slots",
            f.max_jobs
        );
        add!(
            "rbtop_builder_speed_factor",
            "Column #4 of the machines line",
            f.speed_factor
        );
        add!(
            "rbtop_builder_busy_slots",
            "This machine's build slots held on the builder (its build hooks' lock files)",
            f.busy_slots
        );
        add!(
            "rbtop_builder_load1",
            "The builder's 1-minute load average",
            f.load1
        );
        add!(
            "rbtop_builder_memory_available_bytes",
            "MemAvailable on the builder",
            f.memory_available
        );
        add!(
            "rbtop_builder_store_free_bytes",
            "Free space on the filesystem of the builder's store",
            f.store_free
        );
        add!(
            "rbtop_builder_builds_running",
            "Builds running on the builder, whoever they are for",
            f.builds_running
        );
        add!(
            "rbtop_builder_orphaned_builds",
            "Builds whose client is gone: nobody will collect their result",
            f.orphaned_builds
        );
        add!(
            "rbtop_builder_oldest_build_age_seconds",
            "Age of the oldest build running on the builder; absent when none runs",
            f.oldest_build_age
        );
        add!(
            "rbtop_live_machines_kept",
            "1 when the live machines file keeps this builder, 0 when it is left out",
            f.live_kept
        );
        add!(
            "rbtop_builder_canary_success",
            "1 when the latest canary build on the builder succeeded (Nix built there and copied back), 0 when it failed",
            f.canary_success
        );
        add!(
            "rbtop_builder_canary_duration_seconds",
            "How long the latest canary build took, upload to copy back",
            f.canary_duration
        );
        families
    }

    fn add(&self, sample: &BuilderSample) {
        let m = sample.machine;
        let labels = HostLabels {
            host: m.host_name().to_string(),
            uri: m.uri().to_string(),
        };
        let int = |family: &IntFamily, value: i64| {
            family.get_or_create(&labels).set(value);
        };
        let float = |family: &FloatFamily, value: f64| {
            family.get_or_create(&labels).set(value);
        };
        int(&self.max_jobs, m.max_jobs.into());
        float(&self.speed_factor, m.speed_factor);
        if let Some(kept) = sample.live_kept {
            int(&self.live_kept, kept.into());
        }
        if let Some(busy) = sample.busy_slots {
            int(&self.busy_slots, busy.into());
        }
        // Kept while the host is down: the latest canary is still the
        // latest word on whether Nix can build there.
        if let Some(canary) = sample.canary {
            int(
                &self.canary_success,
                (canary.status == CanaryStatus::Ok).into(),
            );
            if let Some(total) = canary.total {
                float(&self.canary_duration, total.as_secs_f64());
            }
        }
        let Some(report) = sample.report else {
            return; // not probed yet: nothing known of its state
        };
        int(&self.up, report.is_up().into());
        int(
            &self.consecutive_failures,
            sample.consecutive_failures.into(),
        );
        if let Some(took) = sample.probe_duration {
            float(&self.probe_duration, took.as_secs_f64());
        }
        if let Some(at) = sample
            .last_probe
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        {
            float(&self.last_probe, at.as_secs_f64());
        }
        if !report.is_up() {
            self.failure
                .get_or_create(&FailureLabels {
                    host: labels.host.clone(),
                    uri: labels.uri.clone(),
                    reason: report.status.name().to_string(),
                })
                .set(1);
            return;
        }
        let facts = report.facts.as_ref();
        let nix_version = report
            .nix_version
            .clone()
            .or_else(|| facts.and_then(|f| f.nix_version.clone()));
        self.info
            .get_or_create(&InfoLabels {
                host: labels.host.clone(),
                uri: labels.uri.clone(),
                nix_version: nix_version.unwrap_or_default(),
                protocol: report.protocol_version.clone().unwrap_or_default(),
                trusted: match report.trusted {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => "unknown",
                }
                .to_string(),
            })
            .set(1);
        if let Some(load) = facts.and_then(|f| f.load) {
            float(&self.load1, load[0]);
        }
        if let Some(bytes) = facts.and_then(|f| f.mem_available) {
            int(&self.memory_available, saturating_i64(bytes));
        }
        if let Some(bytes) = facts.and_then(|f| f.store_free) {
            int(&self.store_free, saturating_i64(bytes));
        }
        if let Some(builds) = sample.builds {
            int(&self.builds_running, saturating_i64(builds.len() as u64));
            let orphans = builds.iter().filter(|b| b.client == Client::Orphan).count();
            int(&self.orphaned_builds, saturating_i64(orphans as u64));
            if let Some(oldest) = builds.iter().map(|b| b.elapsed_s).max() {
                int(&self.oldest_build_age, saturating_i64(oldest));
            }
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The exposition of `builders` and `extras`, in Prometheus's text format.
pub fn render(builders: &[BuilderSample], extras: &FleetExtras) -> String {
    let mut registry = Registry::default();
    let families = Families::register(&mut registry);
    for sample in builders {
        families.add(sample);
    }
    if let Some(all_down) = extras.live_all_down {
        let gauge: Gauge = Gauge::default();
        gauge.set(all_down.into());
        registry.register(
            "rbtop_live_machines_all_down",
            "1 when every builder is down: the live machines file keeps its last content",
            gauge,
        );
    }
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::testing::machine;
    use crate::probe::{Facts, Status, Via};

    fn up_report() -> HostReport {
        HostReport {
            status: Status::Up,
            reason: None,
            via: Via::Ssh,
            connect: None,
            handshake: None,
            ping: Some(Duration::from_millis(2)),
            protocol_version: Some("2.7".into()),
            nix_version: Some("2.26.3".into()),
            trusted: None,
            facts: Some(Facts {
                load: Some([0.5, 0.25, 0.125]),
                mem_available: Some(1 << 30),
                store_free: Some(5 << 30),
                ..Facts::default()
            }),
            stderr: None,
        }
    }

    fn build(client: Client, elapsed_s: u64) -> RemoteBuild {
        RemoteBuild {
            drv: Some("/nix/store/aaaa-x.drv".into()),
            name: "x".into(),
            pid: 7,
            user: "nixbld1".into(),
            elapsed_s,
            client,
            out: None,
            cpu_s: 0.0,
            serving_pid: None,
            slot: None,
            detail: String::new(),
            cpu_idle_s: None,
            start_ticks: 0,
            serving_start_ticks: None,
        }
    }

    fn sample<'a>(m: &'a Machine, report: Option<&'a HostReport>) -> BuilderSample<'a> {
        BuilderSample {
            machine: m,
            report,
            probe_duration: Some(Duration::from_millis(1500)),
            consecutive_failures: 0,
            last_probe: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            busy_slots: Some(1),
            builds: None,
            live_kept: None,
            canary: None,
        }
    }

    fn lines_of<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .collect()
    }

    #[test]
    fn an_up_builder_has_every_figure_with_host_and_uri_labels() {
        let m = machine("ssh://nix@b1 x86_64-linux - 4 2");
        let report = up_report();
        let builds = [build(Client::Orphan, 30), build(Client::ThisMachine, 90)];
        let mut s = sample(&m, Some(&report));
        s.builds = Some(&builds);
        let text = render(&[s], &FleetExtras::default());
        let l = r#"{host="b1",uri="ssh://nix@b1"}"#;
        for expected in [
            format!("rbtop_builder_up{l} 1"),
            format!("rbtop_builder_probe_duration_seconds{l} 1.5"),
            format!("rbtop_builder_consecutive_failures{l} 0"),
            format!("rbtop_builder_last_probe_timestamp_seconds{l} 1700000000.0"),
            format!("rbtop_builder_max_jobs{l} 4"),
            format!("rbtop_builder_speed_factor{l} 2.0"),
            format!("rbtop_builder_busy_slots{l} 1"),
            format!("rbtop_builder_load1{l} 0.5"),
            format!("rbtop_builder_memory_available_bytes{l} 1073741824"),
            format!("rbtop_builder_store_free_bytes{l} 5368709120"),
            format!("rbtop_builder_builds_running{l} 2"),
            format!("rbtop_builder_orphaned_builds{l} 1"),
            format!("rbtop_builder_oldest_build_age_seconds{l} 90"),
            r#"rbtop_builder_info{host="b1",uri="ssh://nix@b1",nix_version="2.26.3",protocol="2.7",trusted="unknown"} 1"#.to_string(),
        ] {
            assert!(text.lines().any(|line| line == expected), "{expected} missing in:\n{text}");
        }
        assert!(lines_of(&text, "rbtop_builder_failure_info").is_empty());
        assert!(
            !text.contains("/nix/store"),
            "no derivation paths as labels"
        );
        assert!(text.contains("# TYPE rbtop_builder_up gauge"));
    }

    #[test]
    fn names_lists_exactly_what_is_exported() {
        let m = machine("ssh://b1");
        let report = up_report();
        let builds = [build(Client::Orphan, 30)];
        let mut s = sample(&m, Some(&report));
        s.builds = Some(&builds);
        s.live_kept = Some(true);
        let down = machine("ssh://b2");
        let failed = HostReport::failed(Status::Timeout, Via::Ssh, "x");
        let extras = FleetExtras {
            live_all_down: Some(false),
        };
        let text = render(&[s, sample(&down, Some(&failed))], &extras);
        let mut exported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        exported.sort_unstable();
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(exported, names);
    }

    #[test]
    fn a_tried_canary_is_exported_and_kept_while_the_host_is_down() {
        let m = machine("ssh://b1");
        let mut ok = CanaryResult::skipped("");
        ok.status = CanaryStatus::Ok;
        ok.total = Some(Duration::from_millis(1250));
        let report = up_report();
        let mut s = sample(&m, Some(&report));
        s.canary = Some(&ok);
        let text = render(&[s], &FleetExtras::default());
        assert!(
            text.contains(r#"rbtop_builder_canary_success{host="b1",uri="ssh://b1"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"rbtop_builder_canary_duration_seconds{host="b1",uri="ssh://b1"} 1.25"#
            ),
            "{text}"
        );
        let mut failed = CanaryResult::skipped("");
        failed.status = CanaryStatus::Failed;
        let down = HostReport::failed(Status::Timeout, Via::Ssh, "x");
        let mut s = sample(&m, Some(&down));
        s.canary = Some(&failed);
        let text = render(&[s], &FleetExtras::default());
        assert!(
            text.contains(r#"rbtop_builder_canary_success{host="b1",uri="ssh://b1"} 0"#),
            "{text}"
        );
        assert!(lines_of(&text, "rbtop_builder_canary_duration_seconds").is_empty());
        // Never tried: no sample at all.
        let text = render(&[sample(&m, Some(&report))], &FleetExtras::default());
        assert!(lines_of(&text, "rbtop_builder_canary_success").is_empty());
    }

    #[test]
    fn a_failed_builder_is_down_with_its_reason_and_no_stale_facts() {
        let m = machine("ssh://b2");
        let report = HostReport::failed(
            Status::Refused,
            Via::Ssh,
            "connect to host b2 port 22: Connection refused",
        );
        let mut s = sample(&m, Some(&report));
        s.consecutive_failures = 3;
        let text = render(&[s], &FleetExtras::default());
        assert!(
            text.contains(r#"rbtop_builder_up{host="b2",uri="ssh://b2"} 0"#),
            "{text}"
        );
        assert!(text.contains(
            r#"rbtop_builder_failure_info{host="b2",uri="ssh://b2",reason="refused"} 1"#
        ));
        assert!(text.contains(r#"rbtop_builder_consecutive_failures{host="b2",uri="ssh://b2"} 3"#));
        assert!(lines_of(&text, "rbtop_builder_info").is_empty());
        assert!(lines_of(&text, "rbtop_builder_load1").is_empty());
        assert!(
            !text.contains("Connection refused"),
            "free text never becomes a label"
        );
    }

    #[test]
    fn a_builder_not_probed_yet_has_no_up_figure_and_all_down_is_exported() {
        let m = machine("ssh://b3");
        let s = sample(&m, None);
        let extras = FleetExtras {
            live_all_down: Some(true),
        };
        let text = render(&[s], &extras);
        assert!(lines_of(&text, "rbtop_builder_up").is_empty(), "{text}");
        assert!(text.contains(r#"rbtop_builder_max_jobs{host="b3",uri="ssh://b3"} 1"#));
        assert!(text.lines().any(|l| l == "rbtop_live_machines_all_down 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = machine("ssh://b4");
        let mut report = up_report();
        report.nix_version = Some("2.26\"\n}x".into());
        let text = render(&[sample(&m, Some(&report))], &FleetExtras::default());
        let info = lines_of(&text, "rbtop_builder_info");
        assert_eq!(info.len(), 1, "{text}");
        assert!(
            info[0].contains(r#"nix_version="2.26\"\n}x""#),
            "{}",
            info[0]
        );
    }
}
