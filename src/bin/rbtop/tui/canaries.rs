//! The dashboard's canary builds (`c`, `C`): each request runs
//! [`rbtop::canary::run_fleet_reporting`] in its own task, results come back
//! one host at a time, and quitting stops them all (cancelled as `rbtop
//! build` cancels) before the SSH sessions close.

use rbtop::canary::{CanaryResult, CanarySettings};
use rbtop::machines::Machine;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub struct Canaries {
    settings: CanarySettings,
    machines: Vec<Machine>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    sender: mpsc::UnboundedSender<(usize, CanaryResult)>,
    results: mpsc::UnboundedReceiver<(usize, CanaryResult)>,
}

impl Canaries {
    pub fn new(settings: CanarySettings, machines: Vec<Machine>) -> Canaries {
        let (sender, results) = mpsc::unbounded_channel();
        Canaries {
            settings,
            machines,
            stop: watch::Sender::new(false),
            tasks: JoinSet::new(),
            sender,
            results,
        }
    }

    /// Canaries on `hosts` (indices into the fleet), at the fleet's
    /// concurrency; each result comes out of [`Canaries::next`].
    pub fn start(&mut self, hosts: Vec<usize>) {
        // Reap the runs already over.
        while self.tasks.try_join_next().is_some() {}
        let machines: Vec<Machine> = hosts
            .iter()
            .filter_map(|&i| self.machines.get(i).cloned())
            .collect();
        let settings = self.settings.clone();
        let sender = self.sender.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            let eligible = vec![None; machines.len()];
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            rbtop::canary::run_fleet_reporting(
                &machines,
                &eligible,
                &settings,
                stopped,
                |i, result| {
                    let _ = sender.send((hosts[i], result.clone()));
                },
            )
            .await;
        });
    }

    /// The next canary result (host index, result); pending while none runs.
    pub async fn next(&mut self) -> Option<(usize, CanaryResult)> {
        self.results.recv().await
    }

    /// Cancel every canary running and wait until each has ended (nothing
    /// left here or on a builder).
    pub async fn shutdown(&mut self) {
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
