//! The refresh engine: which hosts are due, their probes started over the
//! kept channels, results gathered in batches with the builds each found
//! traced to this machine's hooks. The dashboard and `rbtop serve` both
//! drive a [`FleetState`] with it, so they probe the same way.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::clock::Stamp;
use super::fleet::FleetState;
use crate::machines::Machine;
use crate::probe::{Fleet, ProbeEvent};
use crate::remote_builds::{self, DrvLookup, HostBuilds, LocalLinks};
use crate::slots::{self, LocalLoad};

/// One finished probe and the builds its process listing showed (the
/// listing itself is taken out of the report: only the builds are kept).
#[derive(Debug)]
pub struct Finished {
    pub event: ProbeEvent,
    pub builds: HostBuilds,
}

/// A batch of results that arrived together, with when they were taken in.
#[derive(Debug)]
pub struct Batch {
    pub stamp: Stamp,
    pub finished: Vec<Finished>,
}

impl Batch {
    /// Merge the batch into `state`: each report, then its builds.
    pub fn apply_to(self, state: &mut FleetState) {
        let now = Instant::now();
        for Finished { event, builds } in self.finished {
            let index = event.index;
            state.apply(event, self.stamp);
            if let Some(host) = state.hosts.get_mut(index) {
                host.set_builds(builds, now);
            }
        }
    }
}

/// Drives the probes of one fleet. Results come back on a channel it
/// owns, so [`Refresher::next_batch`] never ends.
pub struct Refresher<'f> {
    fleet: &'f Fleet,
    results: mpsc::UnboundedSender<ProbeEvent>,
    incoming: mpsc::UnboundedReceiver<ProbeEvent>,
    machines: Vec<Machine>,
    slots_dir: PathBuf,
    load: LocalLoad,
    drvs: DrvLookup,
}

impl<'f> Refresher<'f> {
    /// `slots_dir` is the build hook's `current-load` directory.
    pub fn new(fleet: &'f Fleet, machines: Vec<Machine>, slots_dir: PathBuf) -> Refresher<'f> {
        let (results, incoming) = mpsc::unbounded_channel();
        let load = slots::read(&slots_dir, &machines);
        Refresher {
            fleet,
            results,
            incoming,
            machines,
            slots_dir,
            load,
            drvs: DrvLookup::new(remote_builds::local_store_dir()),
        }
    }

    pub fn fleet(&self) -> &'f Fleet {
        self.fleet
    }

    /// The latest reading of this machine's build slots.
    pub fn load(&self) -> &LocalLoad {
        &self.load
    }

    /// Read this machine's build slots again (the clock tick does, once a second).
    pub fn read_load(&mut self) -> &LocalLoad {
        self.load = slots::read(&self.slots_dir, &self.machines);
        &self.load
    }

    /// Start the probes of every host due now; with `force` (the operator
    /// asked), of every idle host, backoff or not.
    pub fn start_due(&self, state: &mut FleetState, force: bool) {
        let now = Instant::now();
        let due = state.due(now, force);
        if due.is_empty() {
            return;
        }
        state.start_probes(&due, now, force);
        self.fleet.probe_hosts(&due, &self.results);
    }

    /// When the next host becomes due (an hour away when none is).
    pub fn wake(state: &FleetState) -> tokio::time::Instant {
        state
            .next_due()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))
    }

    /// Wait for a result, then take every other one already there: results
    /// come in bursts, so they are merged (and drawn) together. Cancel-safe:
    /// nothing is taken before the first result has arrived.
    pub async fn next_batch(&mut self) -> Batch {
        let first = self
            .incoming
            .recv()
            .await
            .expect("the refresher holds a sender, so the channel stays open");
        let stamp = Stamp::now();
        // The batch's builds are traced to this machine's hooks with at
        // most one reading of its connections, taken only if a host has a build.
        let mut links = None;
        let mut finished = Vec::new();
        let mut event = Some(first);
        while let Some(mut next) = event.take().or_else(|| self.incoming.try_recv().ok()) {
            let builds = self.builds(&mut next, &mut links);
            finished.push(Finished {
                event: next,
                builds,
            });
        }
        Batch { stamp, finished }
    }

    /// The builds in a probe's report. The process listing is taken out of
    /// the report: only the builds are kept.
    fn builds(&mut self, event: &mut ProbeEvent, links: &mut Option<LocalLinks>) -> HostBuilds {
        let listing = event.report.facts.as_mut()?.processes.take()?;
        Some(listing.map(|listing| {
            if listing.building_parents().is_empty() {
                return Vec::new(); // the usual case: nothing to trace
            }
            let links = links.get_or_insert_with(|| LocalLinks::read(&self.load));
            remote_builds::builds_of(&listing, &links.for_machine(event.index), &mut self.drvs)
        }))
    }
}
