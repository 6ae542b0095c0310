//! How Nix's build hook picks among the eligible machines with a free
//! slot (ref §3). Written by hand, as a restatement of Nix's loop: the
//! lowest `load / speedFactor` wins; on a tie the higher speed factor, then
//! the lower load, then the machine listed first.
//!
//! The division depends on the Nix release. Before 2.20 the speed factor is
//! an unsigned integer, so the division is integer division (load 1 at
//! speed 2 scores 0, as an idle machine does). From 2.20 it is a C++
//! `float`, and so is the division.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::nix_version::NixVersion;

/// The first release whose speed factor is a `float`.
pub(super) const FLOAT_SPEED_FACTOR: NixVersion = NixVersion::new(2, 20, 0);

/// Which arithmetic the local Nix uses for `load / speedFactor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Division {
    /// Nix < 2.20: unsigned integers, the quotient rounded down.
    Integer,
    /// Nix ≥ 2.20: single-precision floats.
    Float,
}

impl Division {
    /// The rule of the given local Nix; current Nix's when it is not known.
    pub fn of(nix: Option<NixVersion>) -> Division {
        match nix {
            Some(version) if version < FLOAT_SPEED_FACTOR => Division::Integer,
            _ => Division::Float,
        }
    }

    /// One sentence saying which rule applies and why.
    pub fn describe(self, nix: Option<NixVersion>) -> String {
        let whose = match nix {
            Some(version) => format!("Nix {version} here"),
            None => "local Nix version unknown, so current Nix (≥ 2.20) assumed".to_string(),
        };
        match self {
            Division::Integer => format!(
                "{whose}: load / speed factor in whole numbers (integer division, Nix < 2.20), \
                 ties to the higher speed factor, then the lower load, then the first listed"
            ),
            Division::Float => format!(
                "{whose}: load / speed factor as a float (Nix ≥ 2.20), \
                 ties to the higher speed factor, then the lower load, then the first listed"
            ),
        }
    }

    /// The speed factor as this Nix holds it.
    fn speed(self, speed_factor: f64) -> Speed {
        match self {
            // 2.8 parses an unsigned int and turns 0 into 1.
            Division::Integer => Speed::Integer((speed_factor as u64).max(1)),
            Division::Float => Speed::Float(speed_factor as f32),
        }
    }

    /// The figure Nix compares: `load / speedFactor`.
    pub fn score(self, load: u32, speed_factor: f64) -> Score {
        match self.speed(speed_factor) {
            Speed::Integer(speed) => Score::Integer(u64::from(load) / speed),
            Speed::Float(speed) => Score::Float(load as f32 / speed),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Speed {
    Integer(u64),
    Float(f32),
}

/// `load / speedFactor` as Nix computes it.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub enum Score {
    Integer(u64),
    Float(f32),
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Score::Integer(n) => write!(f, "{n}"),
            // Enough digits to tell apart what Nix tells apart, no more.
            Score::Float(x) => write!(f, "{}", (f64::from(*x) * 1000.0).round() / 1000.0),
        }
    }
}

impl Serialize for Score {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Score::Integer(n) => serializer.serialize_u64(*n),
            Score::Float(x) => serializer.serialize_f64(f64::from(*x)),
        }
    }
}

/// One machine Nix could choose: eligible, with a free slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Candidate {
    /// Its place in the machines list.
    pub index: usize,
    /// Busy slots (Nix's `load`).
    pub load: u32,
    pub speed_factor: f64,
}

/// Whether Nix prefers `challenger` to the machine it holds as best.
fn better(division: Division, challenger: &Candidate, best: &Candidate) -> bool {
    let score = |c: &Candidate| division.score(c.load, c.speed_factor);
    let speed = |c: &Candidate| division.speed(c.speed_factor);
    match score(challenger).partial_cmp(&score(best)) {
        Some(Ordering::Less) => true,
        Some(Ordering::Equal) => match speed(challenger).partial_cmp(&speed(best)) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => challenger.load < best.load,
            _ => false,
        },
        _ => false,
    }
}

/// The candidates in the order Nix would try them: its pick, then (should
/// that machine fail to connect and be disabled) its next pick, and so on.
/// Each pick is Nix's own scan: the first candidate in list order is the
/// best until a later one is strictly better.
pub(super) fn nix_order(division: Division, candidates: &[Candidate]) -> Vec<usize> {
    let mut left: Vec<Candidate> = candidates.to_vec();
    left.sort_by_key(|c| c.index);
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let mut best = 0;
        for (i, candidate) in left.iter().enumerate().skip(1) {
            if better(division, candidate, &left[best]) {
                best = i;
            }
        }
        order.push(left.remove(best).index);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, load: u32, speed_factor: f64) -> Candidate {
        Candidate {
            index,
            load,
            speed_factor,
        }
    }

    #[test]
    fn the_rule_follows_the_local_nix() {
        assert_eq!(
            Division::of(Some(NixVersion::new(2, 8, 0))),
            Division::Integer
        );
        assert_eq!(
            Division::of(Some(NixVersion::new(2, 19, 9))),
            Division::Integer
        );
        assert_eq!(
            Division::of(Some(NixVersion::new(2, 20, 0))),
            Division::Float
        );
        assert_eq!(Division::of(None), Division::Float);
        assert!(
            Division::Integer
                .describe(Some(NixVersion::new(2, 8, 0)))
                .starts_with("Nix 2.8.0 here: load / speed factor in whole numbers")
        );
        assert!(Division::Float.describe(None).contains("unknown"));
    }

    #[test]
    fn integer_division_ties_a_busy_fast_machine_with_an_idle_slow_one() {
        // load 1 / speed 2 == 0 == 0 / 1: the tie goes to the higher speed.
        let fleet = [c(0, 0, 1.0), c(1, 1, 2.0)];
        assert_eq!(Division::Integer.score(1, 2.0), Score::Integer(0));
        assert_eq!(nix_order(Division::Integer, &fleet), [1, 0]);
        // As floats, 0.5 > 0: the idle machine wins.
        assert_eq!(Division::Float.score(1, 2.0), Score::Float(0.5));
        assert_eq!(nix_order(Division::Float, &fleet), [0, 1]);
    }

    #[test]
    fn integer_mode_truncates_fractional_speed_factors() {
        // 2.8 would not even read 2.5; ranked as its whole part.
        assert_eq!(Division::Integer.score(5, 2.5), Score::Integer(2));
        assert_eq!(
            Division::Integer.score(3, 0.5),
            Score::Integer(3),
            "0 means 1"
        );
    }

    #[test]
    fn ties_go_to_speed_then_load_then_list_order() {
        for division in [Division::Integer, Division::Float] {
            // Equal scores (0), different speeds: the fastest first.
            assert_eq!(
                nix_order(division, &[c(0, 0, 1.0), c(1, 0, 4.0), c(2, 0, 2.0)]),
                [1, 2, 0],
                "{division:?}"
            );
            // Equal scores and speeds: list order.
            assert_eq!(
                nix_order(division, &[c(0, 0, 3.0), c(1, 0, 3.0)]),
                [0, 1],
                "{division:?}"
            );
            // Lower score first, whatever the list order.
            assert_eq!(
                nix_order(division, &[c(0, 4, 1.0), c(1, 1, 1.0)]),
                [1, 0],
                "{division:?}"
            );
        }
        // Equal integer scores and speeds, different loads: the lower load.
        // (3/4 == 0/4 == 0 in whole numbers.)
        assert_eq!(
            nix_order(Division::Integer, &[c(0, 3, 4.0), c(1, 0, 4.0)]),
            [1, 0]
        );
        assert_eq!(
            nix_order(Division::Integer, &[c(0, 0, 4.0), c(1, 3, 4.0)]),
            [0, 1]
        );
    }

    #[test]
    fn float_mode_compares_in_single_precision() {
        // 1/3 and 2/6 are the same f32.
        assert_eq!(Division::Float.score(1, 3.0), Division::Float.score(2, 6.0));
        // Tie on score, 6 > 3: the faster machine, though listed second.
        assert_eq!(
            nix_order(Division::Float, &[c(0, 1, 3.0), c(1, 2, 6.0)]),
            [1, 0]
        );
        assert_eq!(Score::Float(1.0 / 3.0).to_string(), "0.333");
        assert_eq!(Score::Integer(2).to_string(), "2");
    }

    #[test]
    fn the_order_is_that_of_list_position_not_input_order() {
        assert_eq!(
            nix_order(Division::Float, &[c(5, 0, 1.0), c(2, 0, 1.0)]),
            [2, 5]
        );
        assert!(nix_order(Division::Float, &[]).is_empty());
    }
}
