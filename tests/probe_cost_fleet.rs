//! What a probe costs each builder, counted: remote sessions (each pays the
//! login shell) and serial round trips, by the prober and by sshd's own log,
//! on a fleet whose hosts have a real rc cost (`fleet.sh --rc-cost`). Counts,
//! never times: a new session or a serial round trip that sneaks into the
//! cold probe or the warm refresh fails here. Needs root (the fleet).

#[path = "support/fleet.rs"]
mod fleet;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rbtop::machines::{MachinesText, Parser};
use rbtop::probe::{Fleet as Probes, ProbeCost, ProbeSettings};
use rbtop::ssh::{HostKeyPolicy, SshSettings};

/// Sessions sshd started on a host so far: LogLevel VERBOSE logs one
/// `Starting session` line per exec (fleet.sh sets it).
fn sessions_logged(fleet: &fleet::Fleet, host: &str) -> usize {
    let log = fleet.dir.join(host).join("sshd.log");
    std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .lines()
        .filter(|l| l.contains("Starting session"))
        .count()
}

fn cost(sessions: u32, round_trips: u32) -> ProbeCost {
    ProbeCost {
        sessions,
        round_trips,
    }
}

#[test]
fn each_probe_costs_the_sessions_and_round_trips_counted() {
    let fleet = fleet::Fleet::start(fleet::FleetOptions {
        healthy: 2,
        faults: false,
        trixie: false,
        rc_cost_ms: 60,
        rtt_ms: 0,
        forced: true,
        ..Default::default()
    });
    // The rc file is what a session's shell reads: its marker is set for `ssh host CMD`.
    let out = Command::new("ssh")
        .args(["-F", fleet.ssh_config().to_str().unwrap()])
        .args(["b1", "echo rc=$RBTOP_FLEET_RC_COST"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "rc=60",
        "{out:?}"
    );

    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(
        "ssh://b1; ssh-ng://b2",
        rbtop::diagnostics::Origin::BuildersFlag,
    ));
    let machines = parser.finish().machines;
    let control = tempfile::tempdir().unwrap();
    let mut ssh = SshSettings::new(
        vec!["-F".into(), fleet.ssh_config().display().to_string()],
        HostKeyPolicy::Strict,
    );
    ssh.control_parent = control.path().to_path_buf();
    let mut settings = ProbeSettings::new(Duration::from_secs(20), 4, ssh);
    // Exact counts: the builds listing asks a second question only when it
    // sees builds, which this machine's other processes could make it do.
    settings.list_builds = false;
    let hosts = ["b1", "b2"];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let probes = Probes::new(&machines, settings);
        // Cold: one session per host (the store, the first facts and, for
        // ssh://, the daemon's trust share it); round trips: the channel,
        // the handshake (serve 1, worker 2), the ping. The facts and the
        // trust ride along with the handshake.
        // Second: the facts loop opens its session (channel + its question)
        // beside the store's ping. Warm: the ping beside the facts question.
        let rounds = [
            ("cold", [cost(1, 3), cost(1, 4)]),
            ("second", [cost(1, 2), cost(1, 2)]),
            ("warm", [cost(0, 1), cost(0, 1)]),
        ];
        for (round, expected) in rounds {
            let logged: Vec<usize> = hosts.iter().map(|h| sessions_logged(&fleet, h)).collect();
            let mut events = probes.probe_all();
            while let Some(event) = events.recv().await {
                let report = &event.report;
                assert!(report.is_up(), "{round}: {report:?}");
                assert!(report.facts.is_some(), "{round}: facts: {report:?}");
                assert!(report.nix_version.is_some(), "{round}: version: {report:?}");
            }
            for (index, host) in hosts.iter().enumerate() {
                let counted = probes.last_cost(index).expect("no probe in flight");
                assert_eq!(counted, expected[index], "{round} probe of {host}");
                // sshd may log a moment after the channel is open.
                let mut seen = 0;
                for _ in 0..50 {
                    seen = sessions_logged(&fleet, host) - logged[index];
                    if seen >= counted.sessions as usize {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert_eq!(
                    seen, counted.sessions as usize,
                    "{round} probe of {host}: sessions in sshd.log vs counted"
                );
            }
        }
        probes.close().await;

        // With the builds listing on (as `rbtop check` and the dashboard
        // run), a cold probe of hosts where nothing builds still costs one
        // session: the listing rides in the same report.
        let mut ssh = SshSettings::new(
            vec!["-F".into(), fleet.ssh_config().display().to_string()],
            HostKeyPolicy::Strict,
        );
        ssh.control_parent = control.path().to_path_buf();
        let listing = Probes::new(
            &machines,
            ProbeSettings::new(Duration::from_secs(20), 4, ssh),
        );
        let mut events = listing.probe_all();
        while let Some(event) = events.recv().await {
            let facts = event.report.facts.as_ref().expect("facts");
            assert!(
                matches!(facts.processes, Some(Ok(_))),
                "a listing in the cold report: {:?}",
                facts.processes
            );
        }
        for (index, host) in hosts.iter().enumerate() {
            let counted = listing.last_cost(index).expect("no probe in flight");
            assert_eq!(counted.sessions, 1, "cold probe of {host} with the listing");
        }
        listing.close().await;

        // A store behind a forced command (`forced`: sshd runs `nix-store
        // --serve --write` whatever is asked, so the facts script never
        // runs) is up at once, cold and after: its hello is not held back
        // waiting for a report that never comes.
        let mut parser = Parser::new(vec!["x86_64-linux".into()]);
        parser.parse_text(&MachinesText::whole(
            "ssh://forced",
            rbtop::diagnostics::Origin::BuildersFlag,
        ));
        let forced = parser.finish().machines;
        let mut ssh = SshSettings::new(
            vec!["-F".into(), fleet.ssh_config().display().to_string()],
            HostKeyPolicy::Strict,
        );
        ssh.control_parent = control.path().to_path_buf();
        let probes = Probes::new(&forced, ProbeSettings::new(Duration::from_secs(20), 4, ssh));
        for round in ["cold", "second", "warm"] {
            let mut events = probes.probe_all();
            while let Some(event) = events.recv().await {
                let report = &event.report;
                assert!(report.is_up(), "{round} probe of forced: {report:?}");
                assert!(report.facts.is_none(), "{round}: no script ran: {report:?}");
            }
        }
        assert_eq!(probes.last_cost(0).map(|c| c.sessions), Some(0), "warm");
        probes.close().await;
    });
    assert!(Path::new(&fleet.dir).exists());
}
