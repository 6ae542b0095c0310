//! Builds running on the builders, gathered with the facts loop's `builds`
//! request (one `grep` of `/proc` per host and refresh), and who each one is
//! for: this machine, another SSH client, the builder itself, or nobody.
//!
//! - `listing` reads what the builder printed;
//! - `classify` finds the builds in it and their clients;
//! - `local_links` traces an SSH connection back to one of our slots;
//! - `drv_lookup` finds a build's `.drv` in this machine's store;
//! - `stall` watches each build's CPU time between refreshes;
//! - [`kill`] ends one on its builder (`K`);
//! - [`text`] is their wording, shared by `rbtop check` and the dashboard.

mod classify;
mod drv_lookup;
mod kill;
mod local_links;
pub(crate) mod stall;
pub mod text;

pub use crate::remote::listing::{ListingError, ProcessListing};
pub use classify::{Client, RemoteBuild};
pub use drv_lookup::DrvLookup;
pub use kill::{KillOutcome, kill};
pub use local_links::LocalLinks;

use crate::machines::Machine;
use crate::probe::HostReport;
use crate::slots::{self, LocalLoad, MachineLoad};

/// The builds in a host's listing, this machine's each with its `.drv`.
pub fn builds_of(
    listing: &ProcessListing,
    local: &dyn classify::LocalEnds,
    drvs: &mut drv_lookup::DrvLookup,
) -> Vec<RemoteBuild> {
    let mut builds = classify::builds(listing, local);
    // Only this machine's builds can have their .drv in its store: others'
    // would cost a look through the whole store for nothing.
    for build in builds
        .iter_mut()
        .filter(|b| b.client == Client::ThisMachine)
    {
        if let Some(out) = &build.out {
            build.drv = drvs.find(&build.name, out);
        }
    }
    builds
}

/// Each host's builds: `None` when its probe brought no listing (the host
/// is down, or listing was not asked), `Some(Err(why))` when the host could
/// not list its processes.
pub type HostBuilds = Option<Result<Vec<RemoteBuild>, ListingError>>;

/// The builds of every host, in the order of `reports` (the machines'
/// order, as for [`local_links::LocalLinks::read`]).
pub fn gather(
    reports: &[HostReport],
    links: &local_links::LocalLinks,
    drvs: &mut drv_lookup::DrvLookup,
) -> Vec<HostBuilds> {
    reports
        .iter()
        .enumerate()
        .map(|(index, report)| {
            let listing = report.facts.as_ref()?.processes.as_ref()?;
            Some(match listing {
                Ok(listing) => Ok(builds_of(listing, &links.for_machine(index), drvs)),
                Err(why) => Err(why.clone()),
            })
        })
        .collect()
}

/// What the probes say about builds, with this machine's side: its build
/// slots on each machine, and the builds running on each host.
#[derive(Debug)]
pub struct Triage {
    pub load: LocalLoad,
    /// One entry per machine.
    pub builds: Vec<HostBuilds>,
}

impl Triage {
    /// Read this machine's slots now and find the builds in the reports.
    pub fn read(machines: &[Machine], reports: &[HostReport]) -> Triage {
        let load = slots::read(&slots::default_dir(), machines);
        let links = local_links::LocalLinks::read(&load);
        let mut drvs = drv_lookup::DrvLookup::new(local_store_dir());
        let builds = gather(reports, &links, &mut drvs);
        Triage { load, builds }
    }

    pub fn machine_load(&self, index: usize) -> Option<&MachineLoad> {
        self.load.machines()?.get(index)
    }

    pub fn builds(&self, index: usize) -> Option<&Result<Vec<RemoteBuild>, ListingError>> {
        self.builds.get(index)?.as_ref()
    }
}

/// This machine's store, where the `.drv` files of its builds are.
pub fn local_store_dir() -> std::path::PathBuf {
    std::env::var_os("NIX_STORE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| crate::probe::route::STORE_DIR.into(), Into::into)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::classify::{self, Client, LocalEnd, LocalEnds, SshConnection};
    use crate::probe::channel::Channel;
    use crate::probe::links::FactsLink;

    /// The real loop lists this machine's processes, and a stand-in
    /// `nix-build` (a script of that name) whose child started a session
    /// of its own is found as a build started on the builder.
    #[tokio::test]
    async fn the_real_loop_lists_processes_and_a_build_is_found_in_them() {
        struct Nowhere;
        impl LocalEnds for Nowhere {
            fn local_end(&self, _: &SshConnection) -> LocalEnd {
                LocalEnd::Elsewhere
            }
        }

        let dir = std::env::temp_dir().join(format!("rbtop-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("nix-build");
        std::fs::write(
            &script,
            "#!/bin/sh\nname=stand-in-1.0 setsid sleep 30 &\nwait\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut nix_build = std::process::Command::new(&script).spawn().unwrap();

        let words = crate::remote::script::FACTS.words(["/"]);
        let mut link = FactsLink::new(Channel::local(&words).unwrap()).listing_builds(true);
        let mut found = Vec::new();
        for _ in 0..50 {
            let facts = link.read().await.unwrap();
            let listing = facts.processes.expect("asked").expect("Linux lists");
            assert!(
                listing
                    .processes
                    .iter()
                    .any(|p| p.pid == std::process::id()),
                "this test's own process is listed"
            );
            found = classify::builds(&listing, &Nowhere);
            found.retain(|b| b.serving_pid == Some(nix_build.id()));
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = nix_build.kill();
        let _ = nix_build.wait();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].client, Client::BuilderLocal);
        assert_eq!(found[0].name, "stand-in-1.0", "from its environment");
        // The sleep lives on (its own session): end it.
        let _ = std::process::Command::new("kill")
            .arg(found[0].pid.to_string())
            .status();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
