//! The explainer end to end: rules, slots, reachability and ranking
//! together, and the sentences that say what Nix would do.

use super::testing::{NIX_2_8, explain_with, refused, up};
use super::*;

fn ranks(explanation: &Explanation) -> Vec<Option<usize>> {
    explanation.machines.iter().map(|m| m.rank).collect()
}

fn said(explanation: &Explanation) -> String {
    text::outcome(explanation).join("\n")
}

#[test]
fn every_machine_gets_a_verdict_and_the_eligible_free_ones_a_rank() {
    let fleet = "ssh://a x86_64-linux - 2 1\n\
                 ssh://b aarch64-linux - 2 1\n\
                 ssh://c x86_64-linux - 4 2 kvm\n\
                 ssh://d x86_64-linux - 1 1\n\
                 ssh://e x86_64-linux - 2 1 - benchmark";
    let e = explain_with(
        fleet,
        Requirement::new("x86_64-linux", Vec::<String>::new()),
        vec![up(1), up(0), up(1), up(1), up(0)],
        NIX_2_8,
    );
    let standing: Vec<String> = e.machines.iter().map(text::standing).collect();
    // c: 1/2 == 0 in whole numbers, ties with nothing; a: 1/1 = 1.
    assert_eq!(standing, ["#2", "rejected", "#1", "full", "rejected"]);
    assert_eq!(e.outcome.action, HookAnswer::Remote { machine: 2 });
    assert_eq!(e.machines[2].score, Some(Score::Integer(0)));
    assert_eq!(e.machines[3].score, None, "a full machine is not scored");
    assert_eq!(
        text::why_not(&e.machines[4]),
        ["mandatory feature 'benchmark' not required (the build requires: -)"]
    );
    assert_eq!(
        text::why_not(&e.machines[3]),
        ["full: 1 of 1 slots busy here, so Nix skips it"]
    );
    assert!(e.has_ready_machine());
    assert!(
        said(&e).starts_with("Nix would build on c (ssh://c): load 1 / speed factor 2 = 0."),
        "{}",
        said(&e)
    );
}

#[test]
fn the_local_nix_decides_between_integer_and_float_ranking() {
    let fleet = "ssh://slow x86_64-linux - 2 1\nssh://fast x86_64-linux - 2 2";
    let need = || Requirement::new("x86_64-linux", Vec::<String>::new());
    let old = explain_with(fleet, need(), vec![up(0), up(1)], NIX_2_8);
    assert_eq!(
        ranks(&old),
        [Some(2), Some(1)],
        "0/1 ties 1/2 = 0: faster wins"
    );
    assert_eq!(old.division, Division::Integer);
    assert!(text::ranking(&old).contains("Nix 2.8.0 here: load / speed factor in whole numbers"));
    let new = explain_with(
        fleet,
        need(),
        vec![up(0), up(1)],
        Some(crate::nix_version::NixVersion::new(2, 24, 0)),
    );
    assert_eq!(ranks(&new), [Some(1), Some(2)], "0 < 0.5");
    assert_eq!(new.division, Division::Float);
}

#[test]
fn a_down_host_is_not_ranked_but_nix_tries_it_first_when_it_scores_best() {
    let fleet =
        "ssh://a x86_64-linux - 2 1\nssh://b x86_64-linux - 2 4\nssh://c x86_64-linux - 2 1";
    let e = explain_with(
        fleet,
        Requirement::new("x86_64-linux", Vec::<String>::new()),
        vec![up(1), refused(0), up(0)],
        NIX_2_8,
    );
    assert_eq!(ranks(&e), [Some(2), None, Some(1)]);
    assert_eq!(e.machines[1].availability, Availability::Down);
    assert_eq!(e.outcome.fails_first, [1]);
    assert_eq!(e.outcome.action, HookAnswer::Remote { machine: 2 });
    let text = said(&e);
    assert!(text.contains("Nix would first try b (down)"), "{text}");
    assert!(
        text::why_not(&e.machines[1])[0].starts_with(
            "down (refused: ssh: connect to host port 22: Connection refused): Nix would still try it"
        ),
        "{:?}",
        text::why_not(&e.machines[1])
    );
}

#[test]
fn full_everywhere_and_unbuildable_here_means_postpone() {
    let e = explain_with(
        "ssh://a aarch64-linux - 1 1\nssh://b x86_64-linux",
        Requirement::new("aarch64-linux", Vec::<String>::new()),
        vec![up(1), up(0)],
        NIX_2_8,
    );
    assert_eq!(e.outcome.action, HookAnswer::Postpone);
    assert!(!e.has_ready_machine());
    let text = said(&e);
    assert!(
        text.contains("No eligible machine has a free slot and this machine cannot build it"),
        "{text}"
    );
    assert!(text.contains("answers postpone"), "{text}");
}

#[test]
fn no_eligible_machine_is_said_plainly_with_what_nix_does() {
    let fleet = "ssh://a aarch64-linux";
    let here = explain_with(
        fleet,
        Requirement::new("x86_64-linux", ["big-parallel"]),
        vec![up(0)],
        NIX_2_8,
    );
    assert_eq!(here.outcome.action, HookAnswer::DeclineBuildHere);
    let text = said(&here);
    assert!(
        text.starts_with("No machine is eligible for x86_64-linux with features big-parallel."),
        "{text}"
    );
    assert!(text.contains("Nix builds it here"), "{text}");

    let nowhere = explain_with(
        fleet,
        Requirement::new("x86_64-linux", ["kvm"]),
        vec![up(0)],
        NIX_2_8,
    );
    assert_eq!(nowhere.outcome.action, HookAnswer::DeclineFail);
    let text = said(&nowhere);
    assert!(
        text.contains("This machine cannot build it: feature 'kvm' is not in its system-features"),
        "{text}"
    );
    assert!(text.contains("the build fails"), "{text}");
}

#[test]
fn unknown_slots_count_as_free_and_say_so() {
    let machines = testing::machines("ssh://a x86_64-linux - 1 1");
    let e = explain(Inputs {
        requirement: Requirement::new("x86_64-linux", Vec::<String>::new()),
        subject: Subject::Given,
        machines: &machines,
        observed: vec![Observed {
            reachability: Reachability::unknown("not probed: --no-probe"),
            busy: None,
        }],
        slots_problem: Some("permission denied".into()),
        local: &testing::local(),
        nix_version: None,
    });
    assert_eq!(ranks(&e), [Some(1)]);
    assert_eq!(text::slots(&e.machines[0]), "?/1");
    let text = said(&e);
    assert!(
        text.contains("Whether it answers is not known (not probed: --no-probe)"),
        "{text}"
    );
    assert!(
        text.contains("Busy slots unknown (permission denied)"),
        "{text}"
    );
}
