//! Which processes in a builder's table are builds, and who each build is
//! for. Pure: the table comes from [`super::listing`], what this machine's
//! build hooks are connected to from [`super::local_links`].
//!
//! Nix starts every builder in a session of its own (`setsid`, so its pid is
//! its process group), as a child of the Nix process running the build:
//! `nix-store --serve --write` for an `ssh://` client (when it may build
//! itself, as root without a daemon), `nix-daemon --stdio` for `ssh-ng://`,
//! a daemon worker `nix-daemon <client pid>` when a daemon builds, or a
//! `nix-build`/`nix build` run on the builder itself (reference §5).

use serde::Serialize;

use crate::remote::listing::{ProcessListing, RemoteProcess, ServeFlag};

/// The SSH server's per-connection processes (`sshd-session` from OpenSSH 9.8).
const SSHD: &[&str] = &["sshd", "sshd-session"];

/// Who a build is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// One of this machine's build hooks, holding one of its slots.
    ThisMachine,
    /// Another SSH client (another machine, or something here that is not a
    /// build hook).
    Ssh,
    /// Started on the builder itself.
    BuilderLocal,
    /// Its serving process has no client any more: nobody will collect it.
    Orphan,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::ThisMachine => "this-machine",
            Client::Ssh => "ssh",
            Client::BuilderLocal => "builder-local",
            Client::Orphan => "orphan",
        }
    }
}

/// The SSH connection of a serving process, from its `SSH_CONNECTION`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SshConnection {
    pub client: std::net::SocketAddr,
    pub server: std::net::SocketAddr,
}

impl SshConnection {
    /// `client_ip client_port server_ip server_port`.
    pub fn parse(text: &str) -> Option<SshConnection> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [client_ip, client_port, server_ip, server_port] = words.as_slice() else {
            return None;
        };
        let address = |ip: &str, port: &str| -> Option<std::net::SocketAddr> {
            Some(std::net::SocketAddr::new(
                ip.parse().ok()?,
                port.parse().ok()?,
            ))
        };
        Some(SshConnection {
            client: address(client_ip, client_port)?,
            server: address(server_ip, server_port)?,
        })
    }
}

/// What this machine knows of an SSH connection a builder reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalEnd {
    /// A build hook holding slot `slot` owns it (`hook` is its pid).
    Slot { slot: u32, hook: u32 },
    /// It starts here, and this machine's hooks hold slots on the builder,
    /// but whose socket it is cannot be read (the hooks are another user's).
    LikelySlot,
    /// It starts here, but no build hook owns it.
    NotAHook,
    /// It does not start here.
    Elsewhere,
}

/// Looks up a builder's SSH connection on this machine.
pub trait LocalEnds {
    fn local_end(&self, connection: &SshConnection) -> LocalEnd;
}

/// One build running on a builder.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteBuild {
    /// The derivation's store path, when rbtop can find it (from this
    /// machine's store or its own jobs); `None` otherwise.
    pub drv: Option<String>,
    /// The derivation's name.
    pub name: String,
    /// The builder process, the leader of the build's process group.
    pub pid: u32,
    /// The build user.
    pub user: String,
    pub elapsed_s: u64,
    pub client: Client,
    /// Its first output's path, when the builder's environment was readable.
    pub out: Option<String>,
    /// CPU seconds used by the build's process group so far (processes that
    /// ended count once their parent has waited for them).
    pub cpu_s: f64,
    /// The Nix process that serves the client: `nix-store --serve`,
    /// `nix-daemon --stdio`, or the process that started the build.
    pub serving_pid: Option<u32>,
    /// This machine's slot, for a `this-machine` build.
    pub slot: Option<u32>,
    /// Why the client is what it is, for a person.
    pub detail: String,
    /// Seconds since the build last used CPU, when watched over several
    /// refreshes (`super::stall::CpuWatch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_idle_s: Option<u64>,
    /// Clock ticks after the builder's boot: with `pid`, names the process
    /// for a kill that must not hit a reused pid.
    #[serde(skip)]
    pub start_ticks: u64,
    /// The same for the serving process.
    #[serde(skip)]
    pub serving_start_ticks: Option<u64>,
}

/// The builds in `listing`, oldest first. Builds whose Nix parent sees
/// another machine's store are that machine's, not this host's.
pub(super) fn builds(listing: &ProcessListing, local: &dyn LocalEnds) -> Vec<RemoteBuild> {
    let by_pid = ByPid(listing);
    let mut found: Vec<RemoteBuild> = listing
        .processes
        .iter()
        .filter_map(|process| {
            let parent = by_pid.get(&process.ppid)?;
            let ours = !listing.other_store.contains(&parent.pid);
            (ours && process.is_builder_under(parent))
                .then(|| describe(listing, &by_pid, process, parent, local))
        })
        .collect();
    found.sort_by(|a, b| b.elapsed_s.cmp(&a.elapsed_s).then(a.pid.cmp(&b.pid)));
    found
}

/// Processes by pid: the listing is sorted by pid, so a binary search (a
/// map would cost more to build than all the lookups of a listing).
struct ByPid<'a>(&'a ProcessListing);

impl<'a> ByPid<'a> {
    fn get(&self, pid: &u32) -> Option<&'a RemoteProcess> {
        self.0.process(*pid)
    }
}

fn describe(
    listing: &ProcessListing,
    by_pid: &ByPid,
    builder: &RemoteProcess,
    parent: &RemoteProcess,
    local: &dyn LocalEnds,
) -> RemoteBuild {
    let cpu_ticks: u64 = listing
        .processes
        .iter()
        .filter(|p| p.pgid == builder.pid)
        .map(|p| p.cpu_ticks)
        .sum();
    let verdict = client_of(by_pid, parent, local);
    let serving = verdict.serving.and_then(|pid| by_pid.get(&pid));
    RemoteBuild {
        drv: None,
        name: name_of(listing, builder, parent),
        pid: builder.pid,
        user: listing.user_name(builder.uid),
        elapsed_s: listing.elapsed_s(builder),
        client: verdict.client,
        out: builder.env.get("out").cloned(),
        cpu_s: cpu_ticks as f64 / listing.hz as f64,
        serving_pid: verdict.serving,
        slot: verdict.slot,
        detail: verdict.detail,
        cpu_idle_s: None,
        start_ticks: builder.start_ticks,
        serving_start_ticks: serving.map(|p| p.start_ticks),
    }
}

/// The derivation's name: the builder's `name`, else its build directory's
/// (`nix-build-<name>.drv-<n>`, Nix before 2.32), found by path or by owner.
fn name_of(listing: &ProcessListing, builder: &RemoteProcess, parent: &RemoteProcess) -> String {
    if let Some(name) = builder.env.get("name") {
        return name.clone();
    }
    let from_dir = |path: &str| -> Option<String> {
        let base = path.rsplit('/').next()?;
        let name = base.strip_prefix("nix-build-")?;
        Some(name.rsplit_once(".drv-")?.0.to_string())
    };
    if let Some(name) = builder.env.get("NIX_BUILD_TOP").and_then(|p| from_dir(p)) {
        return name;
    }
    // Without the environment (another user's build): a build user owns
    // exactly one build directory; root's are ambiguous.
    let owned: Vec<&str> = listing
        .build_dirs
        .iter()
        .filter(|d| {
            builder
                .uid
                .is_some_and(|uid| uid != 0 && d.owner_uid == uid)
        })
        .map(|d| d.path.as_str())
        .collect();
    if let [path] = owned.as_slice()
        && let Some(name) = from_dir(path)
    {
        return name;
    }
    // Nix ≥ 2.32 names the directory `nix-<pid of the building process>-<n>`.
    let prefix = format!("nix-{}-", parent.pid);
    if listing.build_dirs.iter().any(|d| {
        d.path
            .rsplit('/')
            .next()
            .is_some_and(|b| b.starts_with(&prefix))
    }) {
        return format!("? ({} in nix-{}-*)", builder.comm, parent.pid);
    }
    format!("? ({})", builder.comm)
}

struct Verdict {
    client: Client,
    serving: Option<u32>,
    slot: Option<u32>,
    detail: String,
}

fn verdict(client: Client, serving: Option<u32>, detail: String) -> Verdict {
    Verdict {
        client,
        serving,
        slot: None,
        detail,
    }
}

/// Who the Nix process `building` builds for.
fn client_of(by_pid: &ByPid, building: &RemoteProcess, local: &dyn LocalEnds) -> Verdict {
    // A daemon worker shows its client's pid as its only argument.
    let requester = if building.comm == "nix-daemon" && building.serve_flag.is_none() {
        match building.numbers.first() {
            // A client that started after its worker is a reused pid.
            Some(client_pid) => match by_pid
                .get(client_pid)
                .filter(|client| client.start_ticks <= building.start_ticks)
            {
                Some(client) => client,
                None => {
                    return verdict(
                        Client::Orphan,
                        Some(building.pid),
                        format!(
                            "daemon worker {} serves pid {client_pid}, which is gone",
                            building.pid
                        ),
                    );
                }
            },
            None => {
                return verdict(
                    Client::BuilderLocal,
                    Some(building.pid),
                    format!("daemon worker {} does not say its client", building.pid),
                );
            }
        }
    } else {
        building
    };
    let Some(flag) = requester.serve_flag.filter(|_| requester.is_nix()) else {
        return verdict(
            Client::BuilderLocal,
            Some(requester.pid),
            format!(
                "started on the builder by {} ({})",
                requester.comm, requester.pid
            ),
        );
    };
    let what = match flag {
        ServeFlag::Serve => "nix-store --serve",
        ServeFlag::Stdio => "nix-daemon --stdio",
    };
    if is_orphaned(by_pid, requester) {
        return verdict(
            Client::Orphan,
            Some(requester.pid),
            format!(
                "{what} ({}) has no SSH session any more (its parent is {})",
                requester.pid, requester.ppid
            ),
        );
    }
    let Some(connection) = requester
        .env
        .get("SSH_CONNECTION")
        .and_then(|c| SshConnection::parse(c))
    else {
        return verdict(
            Client::Ssh,
            Some(requester.pid),
            format!("{what} ({}): its SSH client cannot be read", requester.pid),
        );
    };
    let from = connection.client;
    match local.local_end(&connection) {
        LocalEnd::Slot { slot, hook } => Verdict {
            client: Client::ThisMachine,
            serving: Some(requester.pid),
            slot: Some(slot),
            detail: format!("slot {slot} of this machine (hook {hook}), from {from}"),
        },
        LocalEnd::LikelySlot => verdict(
            Client::ThisMachine,
            Some(requester.pid),
            format!("from this machine ({from}), which holds slots here"),
        ),
        LocalEnd::NotAHook => verdict(
            Client::Ssh,
            Some(requester.pid),
            format!("from this machine ({from}), not a build hook"),
        ),
        LocalEnd::Elsewhere => verdict(
            Client::Ssh,
            Some(requester.pid),
            format!("{what} for {from}"),
        ),
    }
}

/// A serving process with no SSH server above it that was re-parented to
/// init (or to systemd, the usual subreaper): its SSH session is gone. One
/// under another SSH server (dropbear, tailscaled) is not re-parented.
fn is_orphaned(by_pid: &ByPid, process: &RemoteProcess) -> bool {
    let reparented = process.ppid <= 1
        || by_pid
            .get(&process.ppid)
            .is_some_and(|parent| parent.comm == "systemd");
    reparented && !has_sshd_ancestor(by_pid, process)
}

fn has_sshd_ancestor(by_pid: &ByPid, process: &RemoteProcess) -> bool {
    let mut pid = process.ppid;
    for _ in 0..64 {
        let Some(ancestor) = by_pid.get(&pid) else {
            return false;
        };
        if SSHD.contains(&ancestor.comm.as_str()) {
            return true;
        }
        pid = ancestor.ppid;
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::remote::listing::ProcessListing;

    /// A build with plain values, for tests to change what they look at.
    pub(crate) fn sample_build(pid: u32, client: Client) -> RemoteBuild {
        RemoteBuild {
            drv: None,
            name: "x".into(),
            pid,
            user: "root".into(),
            elapsed_s: 1,
            client,
            out: None,
            cpu_s: 0.0,
            serving_pid: None,
            slot: None,
            detail: String::new(),
            cpu_idle_s: None,
            start_ticks: 7,
            serving_start_ticks: None,
        }
    }

    /// A stand-in for this machine: the given connections are slot 0's.
    struct Here(Vec<(SshConnection, LocalEnd)>);

    impl LocalEnds for Here {
        fn local_end(&self, connection: &SshConnection) -> LocalEnd {
            self.0
                .iter()
                .find(|(c, _)| c == connection)
                .map_or(LocalEnd::Elsewhere, |(_, end)| end.clone())
        }
    }

    fn connection(text: &str) -> SshConnection {
        SshConnection::parse(text).unwrap()
    }

    fn stat(pid: u32, comm: &str, ppid: u32, pgid: u32, start: u64) -> String {
        format!(
            "/proc/{pid}/stat:{pid} ({comm}) S {ppid} {pgid} {pgid} 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 {start}\0"
        )
    }

    fn section(records: &[String]) -> ProcessListing {
        crate::remote::listing::tests::listing_of(records, " 0:root", "", "", "N")
    }

    const FROM_HERE: &str = "127.0.0.1 40022 127.0.0.11 2222";

    /// sshd 10 → nix-store --serve 20 → builder 30 → child 31.
    fn serve_tree(sshd_alive: bool) -> Vec<String> {
        let mut records = vec![
            stat(20, "nix-store", if sshd_alive { 10 } else { 1 }, 20, 100),
            "/proc/20/cmdline:--serve\0".to_string(),
            format!("/proc/20/environ:SSH_CONNECTION={FROM_HERE}\0"),
            stat(30, "bash", 20, 30, 50_000),
            "/proc/30/environ:name=hello\0".to_string(),
            "/proc/30/environ:out=/nix/store/aaaa-hello\0".to_string(),
            stat(31, "cc1", 30, 30, 60_000),
        ];
        if sshd_alive {
            records.push(stat(10, "sshd", 1, 10, 90));
        }
        records
    }

    #[test]
    fn a_hook_of_this_machine_is_matched_by_its_connection() {
        let here = Here(vec![(
            connection(FROM_HERE),
            LocalEnd::Slot { slot: 1, hook: 777 },
        )]);
        let found = builds(&section(&serve_tree(true)), &here);
        assert_eq!(found.len(), 1, "{found:?}");
        let build = &found[0];
        assert_eq!(build.client, Client::ThisMachine);
        assert_eq!(
            (build.pid, build.slot, build.serving_pid),
            (30, Some(1), Some(20))
        );
        assert_eq!(build.name, "hello");
        assert_eq!(build.out.as_deref(), Some("/nix/store/aaaa-hello"));
        assert_eq!(build.elapsed_s, 500);
        assert!(
            (build.cpu_s - 0.30).abs() < 1e-9,
            "both members: {}",
            build.cpu_s
        );
        assert!(build.detail.contains("hook 777"), "{}", build.detail);
    }

    #[test]
    fn other_connections_are_ssh_clients() {
        let found = builds(&section(&serve_tree(true)), &Here(Vec::new()));
        assert_eq!(found[0].client, Client::Ssh);
        let not_a_hook = Here(vec![(connection(FROM_HERE), LocalEnd::NotAHook)]);
        let found = builds(&section(&serve_tree(true)), &not_a_hook);
        assert_eq!(found[0].client, Client::Ssh);
        assert!(found[0].detail.contains("not a build hook"));
        let likely = Here(vec![(connection(FROM_HERE), LocalEnd::LikelySlot)]);
        assert_eq!(
            builds(&section(&serve_tree(true)), &likely)[0].client,
            Client::ThisMachine
        );
    }

    #[test]
    fn a_serving_process_without_sshd_is_an_orphan() {
        let here = Here(vec![(
            connection(FROM_HERE),
            LocalEnd::Slot { slot: 0, hook: 1 },
        )]);
        let found = builds(&section(&serve_tree(false)), &here);
        assert_eq!(found[0].client, Client::Orphan);
        assert_eq!(found[0].serving_pid, Some(20));
        assert_eq!(found[0].serving_start_ticks, Some(100));
    }

    #[test]
    fn ssh_ng_and_daemon_workers() {
        // ssh-ng: sshd 10 → nix-daemon --stdio 20 → builder 30.
        let stdio = vec![
            stat(10, "sshd-session", 1, 10, 90),
            stat(20, "nix-daemon", 10, 20, 100),
            "/proc/20/cmdline:--stdio\0".to_string(),
            stat(30, "builder", 20, 30, 500),
        ];
        let found = builds(&section(&stdio), &Here(Vec::new()));
        assert_eq!(
            (found[0].client, found[0].serving_pid),
            (Client::Ssh, Some(20))
        );
        assert!(found[0].detail.contains("SSH client cannot be read"));
        assert_eq!(found[0].name, "? (builder)");

        // A daemon: worker `nix-daemon 20` builds for the serving nix-store 20.
        let mut daemon = serve_tree(true);
        daemon.retain(|r| !r.starts_with("/proc/30/") && !r.starts_with("/proc/31/"));
        daemon.extend([
            stat(5, "nix-daemon", 1, 5, 10),
            stat(40, "nix-daemon", 5, 40, 200),
            "/proc/40/cmdline:20\0".to_string(),
            stat(41, "bash", 40, 41, 300),
            "/proc/41/status:Uid:\t30001\0".to_string(),
        ]);
        let found = builds(&section(&daemon), &Here(Vec::new()));
        assert_eq!(
            found.len(),
            1,
            "the daemon's own worker is no build: {found:?}"
        );
        assert_eq!((found[0].pid, found[0].client), (41, Client::Ssh));
        assert_eq!(found[0].user, "30001");

        // The same worker whose client is gone.
        daemon.retain(|r| !r.starts_with("/proc/20/"));
        let found = builds(&section(&daemon), &Here(Vec::new()));
        assert_eq!(found[0].client, Client::Orphan);
        assert!(found[0].detail.contains("pid 20, which is gone"));
    }

    #[test]
    fn another_ssh_server_is_no_orphan_and_a_reused_client_pid_is() {
        // nix-store --serve under dropbear, not re-parented: a live client.
        let mut records = serve_tree(false);
        records[0] = stat(20, "nix-store", 15, 20, 100);
        records.push(stat(15, "dropbear", 1, 15, 90));
        let found = builds(&section(&records), &Here(Vec::new()));
        assert_eq!(found[0].client, Client::Ssh, "{found:?}");

        // A daemon worker (started at 200) whose client pid 20 now names a
        // process started later (at 300): its client is gone.
        let records = vec![
            stat(5, "nix-daemon", 1, 5, 10),
            stat(20, "nix-store", 1, 20, 300),
            "/proc/20/cmdline:--serve\0".to_string(),
            stat(40, "nix-daemon", 5, 40, 200),
            "/proc/40/cmdline:20\0".to_string(),
            stat(41, "bash", 40, 41, 250),
        ];
        let found = builds(&section(&records), &Here(Vec::new()));
        assert_eq!(found[0].client, Client::Orphan, "{found:?}");
    }

    #[test]
    fn builds_started_on_the_builder_are_builder_local() {
        let records = vec![
            stat(10, "bash", 1, 10, 90),
            stat(20, "nix-build", 10, 20, 100),
            stat(30, "bash", 20, 30, 500),
            "/proc/30/environ:NIX_BUILD_TOP=/tmp/nix-build-by-hand-1.0.drv-0\0".to_string(),
            // nix-build's own hook is not a build.
            stat(32, "build-remote", 20, 32, 510),
        ];
        let found = builds(&section(&records), &Here(Vec::new()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].client, Client::BuilderLocal);
        assert_eq!(found[0].name, "by-hand-1.0", "from the build directory");
        assert!(found[0].detail.contains("nix-build (20)"));
    }

    #[test]
    fn names_from_build_directories_of_both_layouts() {
        let records = [
            stat(20, "nix-daemon", 1, 20, 100),
            "/proc/20/cmdline:--stdio\0".to_string(),
            stat(30, "make", 20, 30, 500),
            "/proc/30/status:Uid:\t30003\0".to_string(),
            stat(40, "make", 20, 40, 500),
            "/proc/40/status:Uid:\t30004\0".to_string(),
        ];
        let dirs = "drwx------ 2 30003 30000 4096 Nov 21 10:00 /nix/var/nix/builds/nix-build-old-layout.drv-0\n\
                    drwx------ 2 30004 30000 4096 Nov 21 10:00 /nix/var/nix/builds/nix-20-1\n";
        let listing = crate::remote::listing::tests::listing_of(&records, "", "", dirs, "N");
        let found = builds(&listing, &Here(Vec::new()));
        let names: Vec<&str> = found.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["old-layout", "? (make in nix-20-*)"]);
    }

    #[test]
    fn builds_under_a_process_that_sees_another_store_are_not_this_hosts() {
        let mut listing = section(&serve_tree(true));
        assert_eq!(listing.building_parents(), [20]);
        listing.other_store.insert(20);
        assert!(builds(&listing, &Here(Vec::new())).is_empty());
    }

    #[test]
    fn ssh_connection_parses_both_families() {
        let v6 = connection("::1 40000 ::1 22");
        assert_eq!(v6.client.port(), 40000);
        assert!(SshConnection::parse("1.2.3.4 x 5.6.7.8 22").is_none());
        assert!(SshConnection::parse("1.2.3.4 1").is_none());
    }
}
