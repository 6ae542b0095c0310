//! Which hosts the table shows, in which order: the filter and the sort,
//! as plain functions of the fleet state.

use std::cmp::Ordering;

use super::fleet::FleetState;
use super::host::{HostState, Shown};
use crate::probe::Status;

/// Columns the table can be sorted by, in the order `s` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    /// As listed in the machines file.
    #[default]
    Listed,
    /// Failures first, then hosts still probing, then up hosts.
    Status,
    Host,
    Latency,
    Load,
    Jobs,
    FreeStore,
    Speed,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Listed,
        SortKey::Status,
        SortKey::Host,
        SortKey::Latency,
        SortKey::Load,
        SortKey::Jobs,
        SortKey::FreeStore,
        SortKey::Speed,
    ];

    pub fn next(self) -> SortKey {
        let at = Self::ALL.iter().position(|&k| k == self).unwrap_or(0);
        Self::ALL[(at + 1) % Self::ALL.len()]
    }

    pub fn previous(self) -> SortKey {
        let at = Self::ALL.iter().position(|&k| k == self).unwrap_or(0);
        Self::ALL[(at + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Listed => "machines order",
            SortKey::Status => "status",
            SortKey::Host => "host",
            SortKey::Latency => "latency",
            SortKey::Load => "load",
            SortKey::Jobs => "jobs",
            SortKey::FreeStore => "free store",
            SortKey::Speed => "speed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sort {
    pub key: SortKey,
    pub reversed: bool,
}

/// Whether a host matches the filter: a case-insensitive substring of its
/// host name, URI, a system, a feature (supported or mandatory) or its
/// status word (`down` for any failure). Every word of the filter must
/// match (`x86 kvm`). `words` are lower-cased once per filter, not per host.
fn matches(host: &HostState, words: &[String]) -> bool {
    let status = host.shown().name();
    // `down` matches every failure, whatever its kind.
    let down = matches!(host.shown(), super::Shown::Known(s) if s != Status::Up);
    let machine = &host.machine;
    words.iter().all(|word| {
        let hit = |text: &str| text.to_lowercase().contains(word);
        hit(host.name())
            || hit(machine.uri())
            || hit(status)
            || (down && "down".contains(word.as_str()))
            || machine.systems.iter().any(|s| hit(s))
            || machine.supported_features.iter().any(|f| hit(f))
            || machine.mandatory_features.iter().any(|f| hit(f))
    })
}

/// Indices of the hosts to show, filtered and sorted. Ties keep the
/// machines-file order, so the table never shuffles between refreshes.
pub fn visible(fleet: &FleetState, filter: &str, sort: Sort) -> Vec<usize> {
    let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
    let mut rows: Vec<usize> = fleet
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, host)| matches(host, &words))
        .map(|(index, _)| index)
        .collect();
    rows.sort_by(|&a, &b| compare(&fleet.hosts[a], &fleet.hosts[b], sort));
    rows
}

fn compare(a: &HostState, b: &HostState, sort: Sort) -> Ordering {
    let direction = |order: Ordering| {
        if sort.reversed {
            order.reverse()
        } else {
            order
        }
    };
    match sort.key {
        SortKey::Listed => Ordering::Equal,
        SortKey::Status => direction(status_rank(a.shown()).cmp(&status_rank(b.shown()))),
        SortKey::Host => direction(a.name().cmp(b.name())),
        SortKey::Speed => direction(b.machine.speed_factor.total_cmp(&a.machine.speed_factor)),
        // Unknown values (a down host's latency) stay last in both directions.
        SortKey::Latency => known_first(a.latency(), b.latency(), |x, y| direction(x.cmp(y))),
        SortKey::Load => known_first(a.load_per_cpu(), b.load_per_cpu(), |x, y| {
            direction(x.total_cmp(y))
        }),
        // Busiest first.
        SortKey::Jobs => known_first(a.busy_slots(), b.busy_slots(), |x, y| direction(y.cmp(x))),
        // Fullest store first.
        SortKey::FreeStore => {
            known_first(a.store_free(), b.store_free(), |x, y| direction(x.cmp(y)))
        }
    }
}

fn known_first<T>(a: Option<T>, b: Option<T>, cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => cmp(&a, &b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Problems first: what an operator sorting by status wants to see.
fn status_rank(shown: Shown) -> u8 {
    match shown {
        Shown::Known(Status::Up) => 2,
        Shown::Probing => 1,
        Shown::Known(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dashboard::clock::Stamp;
    use crate::dashboard::fleet::DEFAULT_REFRESH;
    use crate::dashboard::testing;
    use crate::probe::{Facts, HostReport, ProbeEvent, Via};

    fn fleet() -> FleetState {
        FleetState::new(
            testing::machines(
                "ssh://delta x86_64-linux - 4 1 kvm,big-parallel\n\
             ssh://alpha aarch64-linux - 2 3\n\
             ssh-ng://charlie x86_64-linux - 8 2 benchmark nixos-test\n\
             ssh://bravo x86_64-linux - 1",
            ),
            DEFAULT_REFRESH,
        )
    }

    fn up(ping_ms: u64, load: f64, free: u64) -> HostReport {
        HostReport {
            facts: Some(Facts {
                cpus: Some(2),
                load: Some([load, 0.0, 0.0]),
                store_free: Some(free),
                ..Facts::default()
            }),
            ..testing::up(ping_ms)
        }
    }

    fn apply(fleet: &mut FleetState, index: usize, report: HostReport) {
        fleet.apply(
            ProbeEvent {
                index,
                report,
                elapsed: Duration::ZERO,
            },
            Stamp::now(),
        );
    }

    fn names(fleet: &FleetState, rows: &[usize]) -> Vec<String> {
        rows.iter()
            .map(|&i| fleet.hosts[i].name().to_string())
            .collect()
    }

    fn sorted(fleet: &FleetState, key: SortKey, reversed: bool) -> Vec<String> {
        names(fleet, &visible(fleet, "", Sort { key, reversed }))
    }

    #[test]
    fn every_sort_key_orders_as_labelled_and_reverse_flips_it() {
        let mut f = fleet();
        apply(&mut f, 0, up(30, 1.0, 500));
        apply(
            &mut f,
            1,
            HostReport::failed(Status::Auth, Via::Ssh, "denied"),
        );
        apply(&mut f, 2, up(10, 3.0, 100));
        // bravo (3) is still probing.
        assert_eq!(
            sorted(&f, SortKey::Listed, false),
            ["delta", "alpha", "charlie", "bravo"]
        );
        assert_eq!(
            sorted(&f, SortKey::Status, false),
            ["alpha", "bravo", "delta", "charlie"]
        );
        assert_eq!(
            sorted(&f, SortKey::Host, false),
            ["alpha", "bravo", "charlie", "delta"]
        );
        assert_eq!(
            sorted(&f, SortKey::Host, true),
            ["delta", "charlie", "bravo", "alpha"]
        );
        assert_eq!(
            sorted(&f, SortKey::Latency, false),
            ["charlie", "delta", "alpha", "bravo"]
        );
        assert_eq!(
            sorted(&f, SortKey::Latency, true),
            ["delta", "charlie", "alpha", "bravo"],
            "hosts without a latency stay last when reversed"
        );
        assert_eq!(
            sorted(&f, SortKey::Load, false),
            ["delta", "charlie", "alpha", "bravo"]
        );
        assert_eq!(
            sorted(&f, SortKey::FreeStore, false),
            ["charlie", "delta", "alpha", "bravo"]
        );
        assert_eq!(
            sorted(&f, SortKey::Speed, false),
            ["alpha", "charlie", "delta", "bravo"]
        );
    }

    #[test]
    fn the_sort_cycle_visits_every_key_once() {
        let mut key = SortKey::default();
        let mut seen = vec![key];
        for _ in 1..SortKey::ALL.len() {
            key = key.next();
            seen.push(key);
        }
        assert_eq!(seen, SortKey::ALL);
        assert_eq!(key.next(), SortKey::Listed);
    }

    #[test]
    fn the_filter_matches_host_system_feature_and_status() {
        let mut f = fleet();
        apply(
            &mut f,
            1,
            HostReport::failed(Status::Auth, Via::Ssh, "denied"),
        );
        let shown = |filter: &str| names(&f, &visible(&f, filter, Sort::default()));
        assert_eq!(shown("CHAR"), ["charlie"]);
        assert_eq!(shown("aarch64"), ["alpha"]);
        assert_eq!(shown("kvm"), ["delta"]);
        assert_eq!(
            shown("nixos-test"),
            ["charlie"],
            "mandatory features match too"
        );
        assert_eq!(shown("auth"), ["alpha"]);
        assert_eq!(shown("down"), ["alpha"], "any failure is down");
        assert_eq!(shown("probing"), ["delta", "charlie", "bravo"]);
        assert_eq!(shown("x86_64 big"), ["delta"], "every word must match");
        assert_eq!(shown("ssh-ng"), ["charlie"], "the URI matches");
        assert!(shown("nothing-like-this").is_empty());
        assert_eq!(shown("  ").len(), 4, "a blank filter shows all");
    }
}
