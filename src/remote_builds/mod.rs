//! Builds running on the builders, gathered with the facts loop's `builds`
//! request (one `grep` of `/proc` per host and refresh), and who each one is
//! for: this machine, another SSH client, the builder itself, or nobody.
//!
//! - [`listing`] reads what the builder printed;
//! - [`classify`] finds the builds in it and their clients;
//! - [`local_links`] traces an SSH connection back to one of our slots;
//! - [`drv_lookup`] finds a build's `.drv` in this machine's store;
//! - [`stall`] watches each build's CPU time between refreshes;
//! - [`kill`] ends one on its builder (`K`).

pub mod classify;
pub mod drv_lookup;
pub mod kill;
pub mod listing;
pub mod local_links;
pub mod stall;

pub use classify::{Client, RemoteBuild};
pub use listing::ProcessListing;

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
pub type HostBuilds = Option<Result<Vec<RemoteBuild>, String>>;

/// The builds of every host, in the order of `reports` (the machines'
/// order, as for [`local_links::LocalLinks::read`]).
pub fn gather(
    reports: &[crate::probe::HostReport],
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

/// This machine's store, where the `.drv` files of its builds are.
pub fn local_store_dir() -> std::path::PathBuf {
    std::env::var_os("NIX_STORE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| crate::probe::route::STORE_DIR.into(), Into::into)
}
