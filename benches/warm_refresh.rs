//! What a dashboard refresh costs: a warm `probe_all` over a real loopback
//! fleet (tests/fleet/fleet.sh; root only), after one cold probe.
//!
//! ```sh
//! cargo bench --bench warm_refresh -- [HOSTS] [--rounds R] [--no-space-round] [--no-builds]
//! ```
//!
//! Each refresh also lists the builds on every host (one `grep` there), as
//! the dashboard and `check` do; `--no-builds` leaves that out, to see what
//! the listing costs.
//!
//! Starts HOSTS (default 50) healthy Nix 2.8 builders, probes them once cold
//! (one session per host) and once more (each host's facts loop starts),
//! then runs R (default 10) warm refreshes back to back, each drained to its
//! last report, and measures per refresh: wall time, this process's own CPU
//! (`rbtop::cpu_time::own`, its ssh children excluded) and the processes
//! started machine-wide (`processes` in /proc/stat, the kernel's count of
//! forks and clones, threads included). The fleet's sshd and nix run on this
//! machine, so that count covers rbtop's side *and* the builders' side; it is
//! only meaningful on an otherwise quiet machine. A warm refresh of hosts
//! where nothing builds starts no process there: the listing is taken again
//! (one `grep`) only on a host where a process was created since the last
//! one; but the fleet's hosts share this machine's process table, so any
//! process started anywhere here makes every host list again. It pings the kept store channel and asks the kept facts loop for a
//! quick report. The facts loop asks for the store's free space (one `df`
//! per host) on its first report and then once per `SPACE_INTERVAL`: the
//! warm rounds say whether a `df` could have been due, and a last "space"
//! round, run once the interval has passed since the cold probe, is a refresh
//! in which every host runs its `df`. Every host must be up in every round
//! (exit status 1 otherwise). The fleet is closed and stopped at the end,
//! also on failure.

#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rbtop::machines::{Machine, Parser};
use rbtop::probe::SPACE_INTERVAL;
use rbtop::probe::{DEFAULT_CONCURRENCY, raise_open_file_limit};
use rbtop::probe::{Fleet, ProbeSettings};
use rbtop::ssh::split_nix_sshopts;
use rbtop::ssh::{HostKeyPolicy, SshSettings};

const USAGE: &str = "usage: cargo bench --bench warm_refresh -- [HOSTS] [--rounds R] [--no-space-round] [--no-builds]";

/// Generous: the cold probe of 50 hosts is bounded by key exchanges sharing 2 cores.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    hosts: usize,
    rounds: usize,
    space_round: bool,
    list_builds: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        hosts: 50,
        rounds: 10,
        space_round: true,
        list_builds: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes `--bench` to every bench target.
            "--bench" => {}
            "--no-space-round" => options.space_round = false,
            "--no-builds" => options.list_builds = false,
            "--rounds" => {
                options.rounds = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .filter(|&r| r > 0)
                    .ok_or(USAGE)?;
            }
            hosts => options.hosts = hosts.parse().ok().filter(|&n| n > 0).ok_or(USAGE)?,
        }
    }
    Ok(options)
}

/// One `probe_all`, drained to the end.
struct Round {
    wall: Duration,
    own_cpu: Duration,
    processes: u64,
    /// Hosts whose probe opened a new SSH connection or did a new store handshake.
    reconnected: usize,
    /// Hosts whose report had no free space figure.
    without_space: usize,
    /// Remote sessions the round opened (the prober's count, all hosts).
    sessions: u32,
    /// When the round ended, to tell whether a `df` could have been due.
    ended: Instant,
}

/// The kernel's count of processes (and threads) created since boot.
fn processes_started() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat (Linux only)");
    stat.lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a `processes` line in /proc/stat")
}

fn own_cpu() -> Duration {
    rbtop::cpu_time::own().expect("this process's CPU time (Linux /proc/self)")
}

async fn round(probes: &Fleet, machines: &[Machine]) -> Result<Round, String> {
    let processes_before = processes_started();
    let cpu_before = own_cpu();
    let started = Instant::now();
    let mut events = probes.probe_all();
    let mut reports = Vec::new();
    while let Some(event) = events.recv().await {
        reports.push(event);
    }
    let ended = Instant::now();
    let wall = ended - started;
    let own_cpu = own_cpu().saturating_sub(cpu_before);
    let processes = processes_started() - processes_before;
    if reports.len() != machines.len() {
        return Err(format!(
            "{} reports for {} hosts",
            reports.len(),
            machines.len()
        ));
    }
    let down: Vec<String> = reports
        .iter()
        .filter(|e| !e.report.is_up())
        .map(|e| {
            format!(
                "{}: {} ({})",
                machines[e.index].uri(),
                e.report.status,
                e.report.reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !down.is_empty() {
        return Err(format!("hosts not up:\n  {}", down.join("\n  ")));
    }
    Ok(Round {
        wall,
        own_cpu,
        processes,
        reconnected: reports
            .iter()
            .filter(|e| e.report.connect.is_some() || e.report.handshake.is_some())
            .count(),
        without_space: reports
            .iter()
            .filter(|e| e.report.facts.as_ref().and_then(|f| f.store_free).is_none())
            .count(),
        sessions: (0..machines.len())
            .filter_map(|i| probes.last_cost(i))
            .map(|c| c.sessions)
            .sum(),
        ended,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn per_host_us(d: Duration, hosts: usize) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6 / hosts as f64)
}

fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn row(label: &str, r: &Round, hosts: usize, df: &str) {
    println!(
        "{label:<8} {:>9} {:>13} {:>10} {:>13} {:>9} {:>16}  {df}",
        ms(r.wall),
        per_host_us(r.own_cpu, hosts),
        r.processes,
        r.reconnected,
        r.sessions,
        r.without_space,
    );
}

async fn bench(options: &Options, probes: &Fleet, machines: &[Machine]) -> Result<(), String> {
    let hosts = machines.len();
    println!(
        "{:<8} {:>9} {:>13} {:>10} {:>13} {:>9} {:>16}  df",
        "round", "wall ms", "CPU µs/host", "processes", "reconnected", "sessions", "no free space"
    );
    let cold = round(probes, machines).await?;
    row("cold", &cold, hosts, "every host (first report)");
    // The cold probe's one session per host carried the store and the first
    // facts; the second probe starts each host's facts loop (one session,
    // its first report asks `df`). Not timed as a warm refresh.
    let second_started = Instant::now();
    let second = round(probes, machines).await?;
    row(
        "second",
        &second,
        hosts,
        "every host (the loop's first report)",
    );
    // A host's last `df` was during the second probe: none is due before this.
    let df_from = second_started + SPACE_INTERVAL;
    let mut warm = Vec::new();
    for r in 1..=options.rounds {
        let refresh = round(probes, machines).await?;
        let df = if refresh.ended < df_from {
            "none due"
        } else {
            "may have been due"
        };
        row(&r.to_string(), &refresh, hosts, df);
        warm.push(refresh);
    }
    // The counter is machine-wide: what starts while nothing is probed, in a
    // span as long as all the warm refreshes together, is the background.
    let warm_total: Duration = warm.iter().map(|r| r.wall).sum();
    let idle_before = processes_started();
    tokio::time::sleep(warm_total).await;
    let idle = processes_started() - idle_before;
    let space = if options.space_round {
        // Every host's free space is due once the interval has passed since its cold report.
        let due = second.ended + SPACE_INTERVAL + Duration::from_secs(1);
        let wait = due.saturating_duration_since(Instant::now());
        eprintln!(
            "warm_refresh: waiting {:.0} s for the space interval ({} s)",
            wait.as_secs_f64(),
            SPACE_INTERVAL.as_secs()
        );
        tokio::time::sleep(wait).await;
        let space = round(probes, machines).await?;
        row("space", &space, hosts, "due on every host");
        Some(space)
    } else {
        None
    };

    let walls: Vec<Duration> = warm.iter().map(|r| r.wall).collect();
    let cpus: Vec<Duration> = warm.iter().map(|r| r.own_cpu).collect();
    let processes: Vec<u64> = warm.iter().map(|r| r.processes).collect();
    let quick = warm.iter().filter(|r| r.ended < df_from).count();
    println!();
    println!(
        "{hosts} hosts, {} warm refreshes ({quick} of them with no df due)",
        warm.len()
    );
    println!("cold probe wall                      {} ms", ms(cold.wall));
    println!(
        "warm refresh wall                    median {} ms, min {} ms, max {} ms",
        ms(median(&walls)),
        ms(*walls.iter().min().unwrap()),
        ms(*walls.iter().max().unwrap())
    );
    println!(
        "rbtop CPU per host per warm refresh  median {} µs, max {} µs",
        per_host_us(median(&cpus), hosts),
        per_host_us(*cpus.iter().max().unwrap(), hosts)
    );
    println!(
        "processes started per warm refresh   median {}, max {} (machine-wide: rbtop and its ssh, \
         the fleet's sshd and nix)",
        median(&processes),
        processes.iter().max().unwrap()
    );
    println!(
        "background, nothing probed           {idle} processes in {} ms (as long as the warm \
         refreshes together, which started {})",
        ms(warm_total),
        processes.iter().sum::<u64>()
    );
    if let Some(space) = &space {
        println!(
            "space refresh (a df on every host)   {} ms wall, {} µs CPU per host, {} processes",
            ms(space.wall),
            per_host_us(space.own_cpu, hosts),
            space.processes
        );
    }
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS (VmHWM) of this process     {:.1} MiB (ssh masters not included)",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS (VmHWM) of this process     unknown"),
    }
    let sessions: u32 = warm.iter().chain(&space).map(|r| r.sessions).sum();
    if sessions > 0 {
        return Err(format!("warm refreshes opened {sessions} remote sessions"));
    }
    let reconnected: usize = warm.iter().chain(&space).map(|r| r.reconnected).sum();
    if reconnected > 0 {
        return Err(format!(
            "{reconnected} warm probes opened a new connection or channel"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("warm_refresh: must run as root (the test fleet runs sshd in mount namespaces)");
        return ExitCode::FAILURE;
    }
    if let Some(warning) = raise_open_file_limit(options.hosts) {
        eprintln!("warm_refresh: {warning}");
    }
    eprintln!(
        "warm_refresh: starting a fleet of {} healthy hosts",
        options.hosts
    );
    // Dropping it (a return or a panic) stops every host too.
    let mut test_fleet = fleet::Fleet::start(fleet::FleetOptions {
        healthy: options.hosts,
        faults: false,
        trixie: false,
        ..fleet::FleetOptions::default()
    });
    let outcome = run(&options, &test_fleet);
    test_fleet.stop();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warm_refresh: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options, test_fleet: &fleet::Fleet) -> Result<(), String> {
    // The machines file and NIX_SSHOPTS as the fleet tests use them.
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_file(&test_fleet.machines_file());
    let parsed = parser.finish();
    if let Some(error) = parsed.errors().next() {
        return Err(format!("{}: {}", error.location, error.message));
    }
    if parsed.machines.len() != options.hosts {
        return Err(format!(
            "{} machines in {}, expected {}",
            parsed.machines.len(),
            test_fleet.machines_file().display(),
            options.hosts
        ));
    }
    let control = tempfile::Builder::new()
        .prefix("rbtop-wr")
        .tempdir()
        .map_err(|e| format!("control directory: {e}"))?;
    let mut ssh = SshSettings::new(
        split_nix_sshopts(&test_fleet.nix_sshopts())?,
        HostKeyPolicy::Strict,
    );
    ssh.control_parent = control.path().to_path_buf();
    let mut settings = ProbeSettings::new(TIMEOUT, DEFAULT_CONCURRENCY, ssh);
    settings.list_builds = options.list_builds;
    // One thread, as the rbtop binary runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        let probes = Fleet::new(&parsed.machines, settings);
        let outcome = bench(options, &probes, &parsed.machines).await;
        probes.close().await;
        outcome
    })
}
