//! A fixed fleet with fixed probe results, for view snapshots, state tests
//! and the rendering benchmark. Every value is set here, none measured, so
//! the same fixture always draws the same frame.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::app::{App, AppEffect};
use crate::tui::keymap::Keymap;
use rbtop::dashboard::{Context, FleetState, Stamp};
use rbtop::diagnostics::Origin;
use rbtop::jobs::job::{Event, Graces, Job, JobId};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
use rbtop::jobs::progress::{LineKind, LogLine};
use rbtop::jobs::runner::{SharedJob, lock};
use rbtop::machines::{MachinesText, Parser};
use rbtop::nixconf::{LocalCapacity, Valued};
use rbtop::probe::{Facts, HostReport, ProbeEvent, Status, Via};
use rbtop::slots::{LocalLoad, MachineLoad};

/// The shape of the project's test fleet: healthy hosts, a newer Nix over
/// ssh-ng, and one host per fault. Line 10 is rejected on purpose.
pub const MIXED_MACHINES: &str = "\
ssh://root@b1 x86_64-linux /root/.ssh/fleet 2 1 kvm,big-parallel
ssh://root@b2 x86_64-linux,i686-linux /root/.ssh/fleet 4 2 big-parallel
ssh://root@b3 x86_64-linux /root/.ssh/fleet 1 1 benchmark,nixos-test nixos-test
ssh-ng://root@t1 x86_64-linux /root/.ssh/fleet 8 4 kvm,big-parallel,cuda cuda
ssh://root@refused x86_64-linux /root/.ssh/fleet 2 1
ssh://root@hung aarch64-linux /root/.ssh/fleet 2 1
ssh://root@authfail x86_64-linux /root/.ssh/fleet 2 1
ssh://root@nonix x86_64-linux /root/.ssh/fleet 2 1
ssh://root@wrongkey x86_64-linux /root/.ssh/fleet 2 1 - - c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUJjMU9XMVU2TVgweW1GQm5MdzdFVGxYSW5KNkpJbFdoSG5yVG5Edks5WkI=
ssh://root@typo x86_64-linux /root/.ssh/fleet two 1
";

/// 2026-11-21 10:00:00 UTC: a fixed wall clock.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_200)
}

/// A fixed local machine, so the empty state does not depend on the host running the tests.
pub fn local_capacity() -> LocalCapacity {
    LocalCapacity {
        system: Valued {
            value: "x86_64-linux".into(),
            set_at: None,
        },
        extra_platforms: Valued {
            value: vec!["i686-linux".into()],
            set_at: None,
        },
        system_features: Valued {
            value: ["benchmark", "big-parallel", "kvm", "nixos-test"]
                .map(String::from)
                .to_vec(),
            set_at: Some("/etc/nix/nix.conf:3".into()),
        },
        max_jobs: Valued {
            value: "auto".into(),
            set_at: Some("/etc/nix/nix.conf:4".into()),
        },
        cpus: 8,
    }
}

/// An app over `machines` (a machines file at /etc/nix/machines), nothing probed yet.
pub fn app(machines: &str) -> App {
    let path = PathBuf::from("/etc/nix/machines");
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(machines, Origin::file(&path)));
    let parsed = parser.finish();
    let context = Context {
        consulted: vec![
            "/etc/nix/nix.conf: no `builders` setting".into(),
            format!("{} (Nix's default machines file)", path.display()),
        ],
        default_machines_file: path,
        diagnostics: parsed.diagnostics,
        notices: Vec::new(),
        local: local_capacity(),
        log_directory: Some(PathBuf::from("/root/.local/state/rbtop")),
        checked_as: None,
        daemon_view: None,
        substituters: None,
    };
    let fleet = FleetState::new(parsed.machines, rbtop::dashboard::DEFAULT_REFRESH);
    let mut app = App::new(fleet, context, Keymap::default());
    app.behind_hook = behind_hook;
    app
}

/// The hook holding b1's slot (pid 4242) works for alice's nix-build;
/// no other pid is known, whatever runs on the test machine.
fn behind_hook(pid: u32) -> Option<rbtop::slots::behind::Behind> {
    (pid == 4242).then(|| rbtop::slots::behind::Behind {
        pid: 4200,
        user: "alice".into(),
        command: "nix-build hello.nix".into(),
    })
}

fn up(
    ping_us: u64,
    protocol: &str,
    nix: &str,
    trusted: Option<bool>,
    load: f64,
    free_gib: u64,
) -> HostReport {
    HostReport {
        status: Status::Up,
        reason: None,
        via: Via::Ssh,
        connect: Some(Duration::from_millis(84)),
        handshake: Some(Duration::from_millis(31)),
        ping: Some(Duration::from_micros(ping_us)),
        protocol_version: Some(protocol.into()),
        nix_version: Some(nix.into()),
        trusted,
        facts: Some(Facts {
            arch: Some("x86_64".into()),
            kernel: Some("Linux 6.1.0-28-amd64".into()),
            cpus: Some(2),
            load: Some([load, load * 0.8, load * 0.5]),
            mem_total: Some(24 << 30),
            mem_available: Some(19 << 30),
            store_free: Some(free_gib << 30),
            uptime_s: Some(3 * 86_400 + 4 * 3600),
            nix_version: None,
            processes: None,
        }),
        stderr: None,
    }
}

/// What the project's test fleet reports, host by host, as in `MIXED_MACHINES`.
pub fn mixed_reports() -> Vec<HostReport> {
    let failed = |status, reason: &str| HostReport::failed(status, Via::Ssh, reason);
    vec![
        up(260, "2.7", "2.8.0", None, 0.12, 41),
        up(310, "2.7", "2.8.0", None, 2.40, 41),
        up(280, "2.7", "2.8.0", None, 0.05, 3),
        up(450, "1.37", "2.26.3", Some(true), 0.30, 41),
        failed(
            Status::Refused,
            "ssh: connect to host 127.0.0.2 port 2222: Connection refused",
        ),
        failed(
            Status::Timeout,
            "no answer within 10s while connecting over SSH: Connection timed out during banner exchange",
        ),
        HostReport {
            stderr: Some(
                "debug1: Authentications that can continue: publickey,password\n\
                 debug1: Offering public key: /root/.ssh/fleet ED25519\n\
                 root@127.0.0.4: Permission denied (publickey,password)."
                    .into(),
            ),
            ..failed(
                Status::Auth,
                "root@127.0.0.4: Permission denied (publickey,password).",
            )
        },
        failed(
            Status::Nonix,
            "'nix-store --serve --write' not found on the host: sh: 1: nix-store: not found",
        ),
        HostReport {
            // What ssh says once rbtop has dropped its advice about the temporary file.
            stderr: Some(
                "The fingerprint for the ED25519 key sent by the remote host is\n\
                 SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM.\n\
                 Host key for wrongkey has changed and you have requested strict checking.\n\
                 Host key verification failed."
                    .into(),
            ),
            ..failed(
                Status::Hostkey,
                "host key does not match the key pinned in the machines line \
                 (ssh: Host key verification failed.)",
            )
        },
    ]
}

/// `mixed` with every probe answered and a few local slots busy.
pub fn mixed_fleet() -> App {
    let mut app = app(MIXED_MACHINES);
    let stamp = Stamp {
        at: Instant::now(),
        wall: epoch(),
    };
    answer_all(&mut app, mixed_reports(), stamp);
    let loads = app
        .fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(i, host)| MachineLoad {
            busy: match i {
                0 => 1,
                1 => 4,
                _ => 0,
            },
            max: host.machine.max_jobs,
            holders: Vec::new(),
            upload_lock: None,
        })
        .collect();
    app.on_load(LocalLoad::Readable { machines: loads });
    app
}

/// Feed `reports` (in host order) as finished probes.
pub fn answer_all(app: &mut App, reports: Vec<HostReport>, stamp: Stamp) {
    let all: Vec<usize> = (0..app.fleet.hosts.len()).collect();
    app.fleet.start_probes(&all, stamp.at, false);
    for (index, report) in reports.into_iter().enumerate() {
        app.on_probe(
            ProbeEvent {
                index,
                report,
                elapsed: Duration::from_millis(40),
            },
            stamp,
        );
    }
}

/// `n` hosts, one in seven down, for the rendering benchmark.
pub fn large_fleet(n: usize) -> App {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "ssh://nix@builder-{i:04}.example x86_64-linux,aarch64-linux - {} {} kvm,big-parallel\n",
                1 + i % 8,
                1 + i % 3
            )
        })
        .collect();
    let mut app = app(&text);
    let reports = (0..n)
        .map(|i| {
            if i % 7 == 3 {
                HostReport::failed(Status::Timeout, Via::Ssh, "no answer within 10s")
            } else {
                up(
                    200 + (i as u64 * 37) % 900,
                    "2.7",
                    "2.8.0",
                    None,
                    (i % 10) as f64 / 4.0,
                    (i % 50) as u64,
                )
            }
        })
        .collect();
    answer_all(
        &mut app,
        reports,
        Stamp {
            at: Instant::now(),
            wall: epoch(),
        },
    );
    app
}

/// `numbered.nix <args>` pinned to `ssh://b1`, as the recorded transcripts ran.
pub fn numbered_request(args: &[&str]) -> LaunchRequest {
    LaunchRequest {
        args: std::iter::once("numbered.nix")
            .chain(args.iter().copied())
            .map(String::from)
            .collect(),
        placement: Placement::Pinned {
            uri: "ssh://b1".into(),
            line: "ssh://b1 x86_64-linux - 2 1 - - -".into(),
        },
        tool: BuildTool::NixBuild,
    }
}

/// A job as its runner would leave it after Nix wrote the first `lines`
/// lines of `stderr` (a recorded internal-json transcript), then `exit`
/// (Nix's exit code) if given. Its log file path is fixed.
pub fn job(
    id: u64,
    request: LaunchRequest,
    stderr: &str,
    lines: usize,
    exit: Option<i32>,
) -> SharedJob {
    let now = Instant::now();
    let mut job = Job::new(
        JobId(id),
        request,
        vec!["nix".into(), "build".into()],
        rbtop::jobs::log::DEFAULT_LINE_CAP,
        Graces::default(),
        now,
    );
    job.log_file = Some(PathBuf::from(format!(
        "/root/.local/state/rbtop/jobs/{id}-numbered.nix.log"
    )));
    job.handle(Event::Spawned { pid: 4242 }, now);
    for line in stderr.lines().take(lines) {
        job.handle(Event::Stderr(line.into()), now);
    }
    if let Some(code) = exit {
        job.handle(
            Event::Exited {
                code: Some(code),
                signal: None,
            },
            now,
        );
    }
    std::sync::Arc::new(std::sync::Mutex::new(job))
}

/// The mixed fleet with b1 busy: this machine's hook 4242 holds slot 0 and
/// the upload lock (for 10 minutes: past the threshold), and three builds
/// run there: this machine's, an orphan, and a stalled one from another
/// client. The detail pane is open on b1 with the focus, the orphan selected.
pub fn triage_on_b1() -> App {
    use rbtop::remote_builds::{Client, RemoteBuild};
    use rbtop::slots::{LockHolder, SlotHolder};

    let mut app = mixed_fleet();
    let since = Some(SystemTime::now() - Duration::from_secs(600));
    if let Some(load) = app.fleet.hosts[0].load.as_mut() {
        load.holders = vec![SlotHolder {
            slot: 0,
            pid: 4242,
            since,
        }];
        load.upload_lock = Some(LockHolder { pid: 4242, since });
    }
    let build = |name: &str, pid: u32, client: Client, idle: u64, detail: &str| RemoteBuild {
        drv: None,
        name: name.into(),
        pid,
        user: "nixbld1".into(),
        elapsed_s: 1260,
        client,
        out: None,
        cpu_s: 12.5,
        serving_pid: Some(pid - 10),
        slot: None,
        detail: detail.into(),
        cpu_idle_s: Some(idle),
        start_ticks: 1,
        serving_start_ticks: Some(1),
    };
    let builds = vec![
        build(
            "hello-2.12",
            5120,
            Client::ThisMachine,
            0,
            "slot 0 of this machine (hook 4242)",
        ),
        build(
            "firefox-133.0",
            6120,
            Client::Orphan,
            30,
            "nix-store --serve (6110) has no SSH session any more",
        ),
        build(
            "llvm-19",
            7120,
            Client::Ssh,
            900,
            "nix-store --serve for 10.0.0.5:41234",
        ),
    ];
    app.fleet.hosts[0].builds = Some(Ok(builds));
    app.selected = Some(0);
    app.detail_open = true;
    app.focus = crate::tui::app::Focus::Detail;
    app.detail_build = 1;
    app.refresh_rows();
    app
}

// ---- builds for the state tests: jobs with known logs, keys typed

/// Nix 2.8's stderr for a build sent over ssh:// (recorded).
pub const SSH_LOG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/internal-json/nix28-ssh.log"
));

/// A key with no modifier.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The selected host's name.
pub fn selected_name(app: &App) -> &str {
    app.fleet.hosts[app.selected.unwrap()].name()
}

/// Type `keys`, one character each; what each asked the event loop to do.
pub fn press(app: &mut App, keys: &str) -> Vec<AppEffect> {
    keys.chars()
        .map(|c| app.on_key(key(KeyCode::Char(c))))
        .collect()
}

/// A running job fed the first `lines` lines of the ssh:// transcript.
pub fn running_job(id: u64, lines: usize) -> SharedJob {
    let now = Instant::now();
    let mut job = Job::new(
        JobId(id),
        numbered_request(&[]),
        vec!["nix".into()],
        1000,
        Graces::default(),
        now,
    );
    job.handle(Event::Spawned { pid: 4242 }, now);
    for line in SSH_LOG.lines().take(lines) {
        job.handle(Event::Stderr(line.into()), now);
    }
    std::sync::Arc::new(std::sync::Mutex::new(job))
}

/// A job whose log is `n` numbered build lines.
pub fn job_with_lines(n: usize) -> SharedJob {
    let job = running_job(1, 0);
    {
        let mut job = lock(&job);
        for i in 1..=n {
            let text = if i % 10 == 0 {
                format!("line {i}: Needle here")
            } else {
                format!("line {i}")
            };
            job.log.push(LogLine {
                drv: None,
                kind: LineKind::Build,
                text,
            });
        }
    }
    job
}

/// The mixed fleet with `jobs` in its jobs pane.
pub fn app_with(jobs: Vec<SharedJob>) -> App {
    let mut app = mixed_fleet();
    for job in jobs {
        app.jobs.add(job);
    }
    app
}

/// The first line the open log shows, up to a `:`.
pub fn first_shown(app: &App) -> String {
    let log = app.log.as_ref().unwrap();
    let job = lock(app.jobs.find(log.job).unwrap());
    let view = job.log.view(log.drv);
    // `line 90`, without the search test's `: Needle here`.
    let text = &view[log.first_shown(&view)].text;
    text.split(':').next().unwrap().to_string()
}

/// `mixed` after `C`: b1's canary built, b2's failed with the daemon's
/// `hostkey`, the other up hosts' still building; b2 selected, its detail open.
pub fn canaries_ran() -> App {
    use rbtop::canary::{CanaryResult, CanaryStatus, FailureClass};
    let mut app = mixed_fleet();
    let effect = app.update(crate::tui::action::Action::CanaryAll);
    assert_eq!(effect, AppEffect::Canary(vec![0, 1, 2, 3]));
    app.on_canary(
        0,
        CanaryResult {
            status: CanaryStatus::Ok,
            reason: None,
            message: Some("built /nix/store/0p7…-rbtop-canary on ssh://b1".into()),
            upload: Some(Duration::from_millis(431)),
            build: Some(Duration::from_millis(5)),
            download: Some(Duration::from_millis(6)),
            total: Some(Duration::from_millis(612)),
            output: Some("/nix/store/0p7…-rbtop-canary".into()),
            built_on: Some("ssh://b1".into()),
            log_file: None,
        },
    );
    let mut failed = CanaryResult::skipped("");
    failed.status = CanaryStatus::Failed;
    failed.reason = Some(FailureClass::Hostkey);
    failed.message = Some("Host key verification failed.\nerror: cannot connect to 'b2'".into());
    failed.total = Some(Duration::from_millis(140));
    app.on_canary(1, failed);
    app.update(crate::tui::action::Action::Down);
    app
}

/// `mixed` run by `alice` on a machine with a nix-daemon: the check is
/// hers, builds connect as root.
pub fn checked_as_a_user() -> App {
    use rbtop::daemon_view::{Account, LocalView};
    let mut app = mixed_fleet();
    app.context.checked_as = Some(LocalView {
        account: Account {
            uid: 1000,
            name: "alice".into(),
            home: None,
        },
        daemon_socket: Some(PathBuf::from("/nix/var/nix/daemon-socket/socket")),
    });
    app.update(crate::tui::action::Action::Detail);
    app
}

/// `mixed` run as root with a nix-daemon: root's view checked, b2's host
/// key unknown to it; b2 selected, its detail open.
pub fn daemon_view_checked() -> App {
    use rbtop::daemon_view::{DaemonHostView, IdentityFrom};
    let mut app = mixed_fleet();
    let view = |status: Status, reason: Option<&str>| {
        Some(DaemonHostView {
            account: "root",
            identity: Some(PathBuf::from("/root/.ssh/fleet")),
            identity_from: IdentityFrom::Column3,
            status,
            reason: reason.map(str::to_string),
        })
    };
    let mut views = vec![
        view(Status::Up, None),
        view(
            Status::Hostkey,
            Some("host key not trusted (ssh: Host key verification failed.)"),
        ),
    ];
    views.resize(app.fleet.hosts.len(), view(Status::Up, None));
    app.on_daemon_view(Ok((
        "NIX_SSHOPTS of the nix-daemon (pid 812)".into(),
        views,
    )));
    app.update(crate::tui::action::Action::Down);
    app.update(crate::tui::action::Action::Detail);
    app
}

/// `mixed` with the substituters checked: a cache up, one with another
/// store's StoreDir, one unreachable; the diagnostics open.
pub fn substituters_checked() -> App {
    use rbtop::substituters::SubstituterCheck;
    let mut app = mixed_fleet();
    let check =
        |uri: &str, status: &'static str, reason: Option<&str>, priority| SubstituterCheck {
            uri: uri.into(),
            status,
            reason: reason.map(str::to_string),
            elapsed: Duration::from_millis(14),
            priority,
        };
    app.context.substituters = Some(vec![
        check("https://cache.example.org", "up", None, Some(40)),
        check(
            "http://10.0.0.5:5000",
            "wrong-store-dir",
            Some(
                "its StoreDir is /gnu/store, this machine's store is /nix/store: Nix will not use it",
            ),
            None,
        ),
        check(
            "ssh://cache.lab",
            "hostkey",
            Some("host key not trusted (ssh: Host key verification failed.)"),
            None,
        ),
    ]);
    app.update(crate::tui::action::Action::Diagnostics);
    app
}

/// The mixed fleet with the first host's own substituters checked (with
/// `builders-use-substitutes`): one usable, one not; its detail open.
pub fn builder_substituters_checked() -> App {
    use rbtop::substituters::SubstituterCheck;
    use rbtop::substituters::from_builder::BuilderSubstituters;
    let mut app = mixed_fleet();
    let check = |uri: &str, status: &'static str, reason: Option<&str>| SubstituterCheck {
        uri: uri.into(),
        status,
        reason: reason.map(str::to_string),
        elapsed: Duration::from_millis(31),
        priority: None,
    };
    app.fleet.apply_builder_substituters(
        0,
        Ok(BuilderSubstituters {
            checks: vec![
                check("https://cache.example.org", "up", None),
                check(
                    "http://10.0.0.5:5000",
                    "unreachable",
                    Some("unable to download 'http://10.0.0.5:5000/nix-cache-info': Couldn't connect to server (7)"),
                ),
            ],
            not_checked: 0,
        }),
    );
    app.update(crate::tui::action::Action::Detail);
    app
}
