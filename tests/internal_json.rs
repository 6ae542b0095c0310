//! The internal-json parser and the progress fold on real Nix stderr: the
//! transcripts in tests/fixtures/internal-json (recorded by record.sh there
//! from Nix 2.8 and 2.26 against the loopback fleet), each line fed as
//! `rbtop build` feeds it. Expectations are read off the transcripts
//! independently (with serde_json), never from rbtop's own parser. Plus
//! property tests: no line, however wrong, panics the parser or the fold.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rbtop::jobs::job::{
    Cleanup, CleanupReport, Event, Graces, Job, JobEffect, JobEnd, JobId, RemoteDerivation, Signal,
    State,
};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
use rbtop::jobs::progress::{BuildProgress, Counts, DrvStatus, LineKind, LogLine, Phase};
use rbtop::jobs::record::{Activity, Record, parse_line};
use serde_json::{Value, json};

const ALL: [&str; 11] = [
    "nix28-local",
    "nix28-ssh",
    "nix28-ssh-ng",
    "nix28-failure",
    "nix28-fanout",
    "nix28-nix-build",
    "nix28-cancel",
    "nix226-local",
    "nix226-ssh",
    "nix226-failure",
    "nix234-plan-failure",
];

struct Transcript {
    name: &'static str,
    lines: Vec<String>,
    exit: i32,
}

fn transcript(name: &'static str) -> Transcript {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/internal-json");
    let read = |ext: &str| {
        std::fs::read_to_string(format!("{dir}/{name}.{ext}"))
            .unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
    };
    let lines: Vec<String> = read("log").lines().map(String::from).collect();
    assert!(!lines.is_empty(), "{name}.log is empty");
    let exit = read("exit").trim().parse().expect("exit status");
    Transcript { name, lines, exit }
}

/// The JSON object of an `@nix` line, read without rbtop.
fn json_of(line: &str) -> Option<Value> {
    serde_json::from_str(line.strip_prefix("@nix ")?).ok()
}

/// The `line k of N` texts of the transcript's BuildLogLine results, in order.
fn build_lines_in_file(t: &Transcript) -> Vec<String> {
    t.lines
        .iter()
        .filter_map(|l| json_of(l))
        .filter(|j| j["action"] == "result" && j["type"] == 101)
        .map(|j| j["fields"][0].as_str().unwrap().to_string())
        .collect()
}

/// What feeding a transcript line by line gave: the progress at the end,
/// every log line, and each derivation's phases in the order it went
/// through them (sampled after every line).
struct Fed {
    progress: BuildProgress,
    log: Vec<LogLine>,
    phases: Vec<Vec<Phase>>,
    /// The most derivations in each phase at any one time.
    most_at_once: Vec<(Phase, usize)>,
}

fn feed(t: &Transcript) -> Fed {
    let mut progress = BuildProgress::new();
    let start = Instant::now();
    let mut log = Vec::new();
    let mut phases: Vec<Vec<Phase>> = Vec::new();
    let mut most_at_once: Vec<(Phase, usize)> = Vec::new();
    for (i, line) in t.lines.iter().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        log.extend(progress.apply(parse_line(line), now));
        for (d, drv) in progress.derivations().iter().enumerate() {
            if phases.len() <= d {
                phases.push(Vec::new());
            }
            if phases[d].last() != Some(&drv.phase) {
                phases[d].push(drv.phase);
            }
        }
        let mut counted: Vec<(Phase, usize)> = Vec::new();
        for drv in progress.derivations() {
            match counted.iter_mut().find(|(p, _)| *p == drv.phase) {
                Some((_, n)) => *n += 1,
                None => counted.push((drv.phase, 1)),
            }
        }
        for (phase, n) in counted {
            match most_at_once.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, most)) => *most = (*most).max(n),
                None => most_at_once.push((phase, n)),
            }
        }
    }
    Fed {
        progress,
        log,
        phases,
        most_at_once,
    }
}

impl Fed {
    fn most_at_once(&self, phase: Phase) -> usize {
        self.most_at_once
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0, |(_, n)| *n)
    }

    /// Texts of the builder's lines attributed to derivation `index`.
    fn lines_of(&self, index: usize) -> Vec<&str> {
        self.log
            .iter()
            .filter(|l| l.kind == LineKind::Build && l.drv == Some(index))
            .map(|l| l.text.as_str())
            .collect()
    }
}

fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|k| format!("line {k} of {n}")).collect()
}

/// The `/nix/store/…drv` in the transcript's first build activity.
fn first_build_drv(t: &Transcript) -> String {
    t.lines
        .iter()
        .filter_map(|l| json_of(l))
        .find(|j| j["action"] == "start" && j["type"] == 105)
        .map(|j| j["fields"][0].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{}: no build activity", t.name))
}

const REMOTE_PHASES: [Phase; 6] = [
    Phase::Connecting,
    Phase::WaitingForUploadLock,
    Phase::CopyingInputs,
    Phase::Building,
    Phase::CopyingOutputs,
    Phase::Finished,
];

fn pinned_job(uri: &str) -> Job {
    let request = LaunchRequest {
        args: vec!["numbered.nix".into()],
        placement: Placement::Pinned {
            uri: uri.into(),
            line: format!("{uri} x86_64-linux - 2 1 - - -"),
        },
        tool: BuildTool::NixBuild,
    };
    Job::new(
        JobId(1),
        request,
        vec!["nix".into(), "build".into()],
        10_000,
        Graces::default(),
        Instant::now(),
    )
}

/// A job launched as the transcript's build was: pinned to the machine of
/// its first build, or (a local build) with Nix choosing.
fn job_launched_as(t: &Transcript) -> Job {
    let machine = t.lines.iter().find_map(|line| {
        let record: Value = serde_json::from_str(line.strip_prefix("@nix ")?).ok()?;
        (record["action"] == "start" && record["type"] == 105)
            .then(|| record["fields"][1].as_str().unwrap_or_default().to_string())
    });
    match machine.filter(|m| !m.is_empty()) {
        Some(uri) => pinned_job(&uri),
        None => {
            let mut job = pinned_job("unused");
            job.request.placement = Placement::Fleet { builders: None };
            job
        }
    }
}

// ---- every transcript

#[test]
fn every_nix_line_parses_to_a_record_and_others_stay_plain() {
    for name in ALL {
        let t = transcript(name);
        for (i, line) in t.lines.iter().enumerate() {
            let record = parse_line(line);
            let is_nix = json_of(line).is_some();
            assert_eq!(
                matches!(record, Record::Plain(_)),
                !is_nix,
                "{name}:{}: {line}\n→ {record:?}",
                i + 1
            );
            // The action survives parsing.
            if let Some(j) = json_of(line) {
                let kind = match &record {
                    Record::Start(_) => "start",
                    Record::Stop { .. } => "stop",
                    Record::Result { .. } => "result",
                    Record::Message(_) => "msg",
                    Record::SetPhase(_) => "setPhase",
                    Record::Plain(_) => "plain",
                };
                assert_eq!(j["action"], kind, "{name}:{}", i + 1);
            }
        }
    }
}

/// Each log line the fold gives back matches a record that carries text:
/// every `msg`, every BuildLogLine result, every start at level ≤ info with
/// text, every non-`@nix` line; nothing else, nothing dropped, in order.
#[test]
fn no_line_is_lost_and_none_is_invented() {
    for name in ALL {
        let t = transcript(name);
        let mut expected: Vec<String> = Vec::new();
        for line in &t.lines {
            let Some(j) = json_of(line) else {
                expected.push(line.clone());
                continue;
            };
            match j["action"].as_str().unwrap() {
                "msg" => expected.push(j["msg"].as_str().unwrap().into()),
                "result" if j["type"] == 101 => {
                    expected.push(j["fields"][0].as_str().unwrap().into())
                }
                "start" if j["level"].as_u64().unwrap() <= 3 && j["text"] != "" => {
                    expected.push(j["text"].as_str().unwrap().into())
                }
                _ => {}
            }
        }
        let fed = feed(&t);
        let got: Vec<String> = fed.log.iter().map(|l| l.text.clone()).collect();
        assert_eq!(got, expected, "{name}");
        let build_lines: Vec<String> = fed
            .log
            .iter()
            .filter(|l| l.kind == LineKind::Build)
            .map(|l| l.text.clone())
            .collect();
        assert_eq!(build_lines, build_lines_in_file(&t), "{name}");
        // Every builder line belongs to a derivation.
        assert!(
            fed.log
                .iter()
                .filter(|l| l.kind == LineKind::Build)
                .all(|l| l.drv.is_some()),
            "{name}: a builder line without its derivation"
        );
    }
}

/// Through a whole [`Job`], each transcript ends as its exit status says,
/// and the log file gets one line per log line, builder lines named.
#[test]
fn a_job_fed_each_transcript_ends_as_nix_did() {
    for name in ALL {
        let t = transcript(name);
        let mut job = job_launched_as(&t);
        let start = Instant::now();
        assert!(job.handle(Event::Spawned { pid: 4242 }, start).is_empty());
        let mut writes = Vec::new();
        for (i, line) in t.lines.iter().enumerate() {
            let now = start + Duration::from_millis(i as u64 + 1);
            for effect in job.handle(Event::Stderr(line.clone()), now) {
                match effect {
                    JobEffect::Write(text) => writes.push(text),
                    other => panic!("{name}: a log line asked for {other:?}"),
                }
            }
        }
        let fed = feed(&t);
        assert_eq!(writes.len(), fed.log.len(), "{name}");
        // Builder lines go to the file as `<derivation name>> <line>`.
        let named: Vec<&str> = writes
            .iter()
            .filter_map(|w| {
                job.progress
                    .derivations()
                    .iter()
                    .find_map(|d| w.strip_prefix(&format!("{}> ", d.name())))
            })
            .collect();
        assert_eq!(named, build_lines_in_file(&t), "{name}");
        let effects = job.handle(
            Event::Exited {
                code: Some(t.exit),
                signal: None,
            },
            start + Duration::from_secs(60),
        );
        assert_eq!(effects, [JobEffect::Finished], "{name}");
        assert_eq!(job.exit_status(), Some(t.exit as u8), "{name}");
        match job.ended().unwrap() {
            JobEnd::Succeeded => assert_eq!(t.exit, 0, "{name}"),
            JobEnd::Failed { exit_code, error } => {
                assert_eq!(*exit_code, t.exit, "{name}");
                let error = error.as_deref().unwrap_or_default();
                assert!(error.starts_with("error: "), "{name}: {error}");
                assert!(!error.contains('\u{1b}'), "{name}: colours left: {error:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
        // The job is over: nothing is still shown as running.
        assert!(
            job.progress.derivations().iter().all(|d| !d.is_running()),
            "{name}"
        );
    }
}

// ---- Nix 2.8, one transcript at a time

#[test]
fn local_build_on_this_machine() {
    let t = transcript("nix28-local");
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("{:?}", fed.progress.derivations())
    };
    assert_eq!(drv.drv, first_build_drv(&t));
    assert_eq!(drv.name(), "rbtop-numbered-local-1795259164");
    assert_eq!(drv.machine, None);
    assert_eq!(drv.status, DrvStatus::Succeeded);
    assert_eq!(fed.phases[0], [Phase::Building, Phase::Finished]);
    // A local builder's setPhase comes through (as result 104).
    assert_eq!(drv.builder_phase.as_deref(), Some("installPhase"));
    assert_eq!(fed.lines_of(0), numbered(5));
    assert_eq!(drv.lines, 5);
    assert_eq!(
        fed.progress.counts(),
        Counts {
            done: 1,
            expected: 1,
            running: 0,
            failed: 0
        }
    );
    assert!(fed.progress.errors().is_empty());
}

#[test]
fn ssh_build_goes_through_every_hook_step() {
    let t = transcript("nix28-ssh");
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("{:?}", fed.progress.derivations())
    };
    assert_eq!(drv.drv, first_build_drv(&t));
    assert_eq!(drv.machine.as_deref(), Some("ssh://b1"));
    assert_eq!(drv.status, DrvStatus::Succeeded);
    assert_eq!(fed.phases[0], REMOTE_PHASES);
    // Nix 2.8 loses a remote builder's setPhase over ssh://.
    assert_eq!(drv.builder_phase, None);
    assert_eq!(fed.lines_of(0), numbered(5));
    assert_eq!(fed.progress.counts().done, 1);
    assert_eq!(fed.progress.counts().expected, 1);
}

#[test]
fn ssh_ng_nested_build_is_joined_to_the_outer_one() {
    let t = transcript("nix28-ssh-ng");
    // Two build activities in the file, one for the outer (hook) build and
    // one relayed from the builder, for the same derivation.
    let builds: Vec<Value> = t
        .lines
        .iter()
        .filter_map(|l| json_of(l))
        .filter(|j| j["action"] == "start" && j["type"] == 105)
        .collect();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["fields"][0], builds[1]["fields"][0]);
    assert_eq!(builds[1]["fields"][1], "");
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("one derivation: {:?}", fed.progress.derivations())
    };
    assert_eq!(drv.drv, first_build_drv(&t));
    assert_eq!(drv.machine.as_deref(), Some("ssh-ng://b1"));
    assert_eq!(drv.status, DrvStatus::Succeeded);
    assert_eq!(fed.lines_of(0), numbered(5));
    // ssh-ng relays the builder's own phases.
    assert_eq!(drv.builder_phase.as_deref(), Some("installPhase"));
    assert_eq!(fed.phases[0], REMOTE_PHASES);
    // The nested `Builds` activity's counts do not replace the top one's.
    assert_eq!(fed.progress.counts().done, 1);
    assert_eq!(fed.progress.counts().expected, 1);
}

#[test]
fn remote_failure_keeps_the_builders_exit_code_and_message() {
    let t = transcript("nix28-failure");
    assert_eq!(t.exit, 1, "Nix 2.8 exits 1 for a remote failure");
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("{:?}", fed.progress.derivations())
    };
    assert_eq!(drv.machine.as_deref(), Some("ssh://b1"));
    let DrvStatus::Failed { message, exit_code } = &drv.status else {
        panic!("{:?}", drv.status)
    };
    assert_eq!(*exit_code, Some(3));
    assert_eq!(
        *message,
        format!(
            "build of '{0}' on 'ssh://b1' failed: builder for '{0}' failed with exit code 3",
            drv.drv
        )
    );
    assert_eq!(drv.phase, Phase::Finished);
    let mut lines = numbered(5);
    lines.push("failing with 3".into());
    assert_eq!(fed.lines_of(0), lines);
    // Both of Nix's errors are kept, in order, as written (colours included).
    let errors = fed.progress.errors();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("failed with exit code 3\u{1b}[0m"));
    assert!(errors[1].contains("failed with exit code 1"));
    assert_eq!(fed.progress.counts().failed, 1);
    assert_eq!(fed.progress.counts().done, 0);
}

#[test]
fn fanout_queues_parts_behind_the_one_slot() {
    let t = transcript("nix28-fanout");
    let fed = feed(&t);
    let drvs = fed.progress.derivations();
    let names: Vec<&str> = drvs.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "rbtop-numbered-fan-1795259164-part0",
            "rbtop-numbered-fan-1795259164-part1",
            "rbtop-numbered-fan-1795259164-part2",
            "rbtop-fanout-fan-1795259164",
        ]
    );
    for drv in drvs {
        assert_eq!(drv.machine.as_deref(), Some("ssh://b1"), "{}", drv.name());
        assert_eq!(drv.status, DrvStatus::Succeeded, "{}", drv.name());
    }
    // The first part and the final build never waited; parts 1 and 2 did,
    // first for a slot, then through every hook step.
    assert_eq!(fed.phases[0], REMOTE_PHASES);
    assert_eq!(fed.phases[3], REMOTE_PHASES);
    let mut waited = vec![Phase::WaitingForSlot];
    waited.extend(REMOTE_PHASES);
    assert_eq!(fed.phases[1], waited);
    assert_eq!(fed.phases[2], waited);
    assert_eq!(fed.most_at_once(Phase::WaitingForSlot), 2);
    // One slot: never two builds past waiting at the same time.
    for phase in &REMOTE_PHASES[..5] {
        assert_eq!(fed.most_at_once(*phase), 1, "{phase:?}");
    }
    for part in 0..3 {
        assert_eq!(fed.lines_of(part), numbered(5), "part {part}");
    }
    let inputs = fed.lines_of(3);
    assert_eq!(inputs.len(), 3);
    for (part, line) in inputs.iter().enumerate() {
        assert!(
            line.starts_with("input /nix/store/") && line.ends_with(&format!("-part{part}")),
            "{line}"
        );
    }
    assert_eq!(
        fed.progress.counts(),
        Counts {
            done: 4,
            expected: 4,
            running: 0,
            failed: 0
        }
    );
}

#[test]
fn nix_build_on_b2() {
    let t = transcript("nix28-nix-build");
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("{:?}", fed.progress.derivations())
    };
    assert_eq!(drv.machine.as_deref(), Some("ssh://b2"));
    assert_eq!(drv.name(), "rbtop-numbered-nixbuild-1795259164");
    assert_eq!(drv.status, DrvStatus::Succeeded);
    // nix-build prints its plan first: the derivation is queued from there.
    assert_eq!(fed.phases[0][0], Phase::Queued);
    assert_eq!(fed.phases[0][1..], REMOTE_PHASES);
    assert_eq!(fed.lines_of(0), numbered(3));
    // nix-build's notice is kept as Nix's own line, at info level.
    assert!(
        fed.log
            .iter()
            .any(|l| l.kind == LineKind::Nix(3) && l.text == "this derivation will be built:")
    );
}

#[test]
fn sigint_gives_nixs_interrupted_error() {
    let t = transcript("nix28-cancel");
    assert_eq!(t.exit, 1);
    let fed = feed(&t);
    let [drv] = fed.progress.derivations() else {
        panic!("{:?}", fed.progress.derivations())
    };
    assert_eq!(drv.machine.as_deref(), Some("ssh://b1"));
    assert_eq!(fed.lines_of(0), numbered(100)[..17]);
    let errors = fed.progress.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].ends_with("interrupted by the user"), "{errors:?}");
}

/// Spawned, lines up to the last builder line, CancelRequested, the rest,
/// then Nix's exit 1: the job does not fail, it checks the builder the
/// derivation was running on, and ends cancelled (130).
#[test]
fn cancel_mid_build_checks_the_builder_then_ends_cancelled() {
    let t = transcript("nix28-cancel");
    let drv_path = first_build_drv(&t);
    let last_build_line = t
        .lines
        .iter()
        .rposition(|l| json_of(l).is_some_and(|j| j["type"] == 101))
        .unwrap();
    let mut job = pinned_job("ssh://b1");
    let start = Instant::now();
    let at = |i: usize| start + Duration::from_millis(i as u64 + 1);
    job.handle(Event::Spawned { pid: 777 }, start);
    for (i, line) in t.lines[..=last_build_line].iter().enumerate() {
        job.handle(Event::Stderr(line.clone()), at(i));
    }
    assert!(job.progress.derivations()[0].is_running());
    let effects = job.handle(
        Event::CancelRequested,
        at(last_build_line) + Duration::from_micros(1),
    );
    assert!(
        effects.contains(&JobEffect::Signal {
            pgid: 777,
            signal: Signal::Interrupt
        }),
        "{effects:?}"
    );
    for (i, line) in t.lines.iter().enumerate().skip(last_build_line + 1) {
        job.handle(Event::Stderr(line.clone()), at(i));
    }
    let effects = job.handle(
        Event::Exited {
            code: Some(t.exit),
            signal: None,
        },
        at(t.lines.len()),
    );
    let build = RemoteDerivation {
        machine: "ssh://b1".into(),
        drv: drv_path,
    };
    assert_eq!(
        effects,
        [
            JobEffect::KillStragglers,
            JobEffect::CheckBuilders(vec![build.clone()])
        ]
    );
    assert_eq!(job.state, State::CheckingBuilders);
    // Nix's "stop" of the interrupted build is no success.
    assert_eq!(job.progress.derivations()[0].status, DrvStatus::Stopped);
    let effects = job.handle(
        Event::BuildersChecked(vec![CleanupReport {
            build,
            cleanup: Cleanup::Clean,
        }]),
        at(t.lines.len() + 1),
    );
    assert_eq!(effects.last(), Some(&JobEffect::Finished));
    assert_eq!(job.ended(), Some(&JobEnd::Cancelled));
    assert_eq!(job.exit_status(), Some(130));
    assert_eq!(
        job.notes,
        ["rbtop: ssh://b1: nothing of rbtop-numbered-cancel-1795259164 left running"]
    );
}

/// The same transcript without a cancel from rbtop: Nix was interrupted by
/// someone else, so the job failed with Nix's error.
#[test]
fn interrupted_by_someone_else_is_a_failure() {
    let t = transcript("nix28-cancel");
    let mut job = pinned_job("ssh://b1");
    let now = Instant::now();
    job.handle(Event::Spawned { pid: 777 }, now);
    for line in &t.lines {
        job.handle(Event::Stderr(line.clone()), now);
    }
    job.handle(
        Event::Exited {
            code: Some(1),
            signal: None,
        },
        now,
    );
    assert_eq!(
        job.ended(),
        Some(&JobEnd::Failed {
            exit_code: 1,
            error: Some("error: interrupted by the user".into())
        })
    );
}

// ---- Nix 2.26 (with `parent`) against 2.8

fn parents(t: &Transcript) -> Vec<Option<u64>> {
    t.lines
        .iter()
        .filter_map(|l| match parse_line(l) {
            Record::Start(start) => Some(start.parent),
            _ => None,
        })
        .collect()
}

#[test]
fn only_nix_226_sends_parents_and_hook_steps_name_the_realisation() {
    for name in ALL {
        let t = transcript(name);
        let parents = parents(&t);
        if name.starts_with("nix28") {
            assert!(parents.iter().all(Option::is_none), "{name}: {parents:?}");
            continue;
        }
        // 2.26 sends a parent with every start (0 for none); each non-zero
        // one comes through, and no other.
        let starts: Vec<Value> = t
            .lines
            .iter()
            .filter_map(|l| json_of(l))
            .filter(|j| j["action"] == "start")
            .collect();
        assert!(starts.iter().all(|j| j["parent"].is_u64()), "{name}");
        let in_file: Vec<Option<u64>> = starts
            .iter()
            .map(|j| j["parent"].as_u64().filter(|&p| p != 0))
            .collect();
        assert_eq!(parents, in_file, "{name}");
        // Remote builds have hook steps, which have a parent; the 2.34
        // recording is local.
        assert_eq!(
            parents.iter().any(Option::is_some),
            !matches!(name, "nix226-local" | "nix234-plan-failure"),
            "{name}: {parents:?}"
        );
    }
    // On 2.26 the build hook's steps are children of the realisation.
    let t = transcript("nix226-ssh");
    let realise = t
        .lines
        .iter()
        .find_map(|l| match parse_line(l) {
            Record::Start(s) if s.activity == Activity::Realise => Some(s.id),
            _ => None,
        })
        .unwrap();
    let connecting = t
        .lines
        .iter()
        .find_map(|l| match parse_line(l) {
            Record::Start(s) if s.text == "connecting to 'ssh://b1'" => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(connecting.parent, Some(realise));
}

/// What a derivation came to, without its store path (the seeds differ):
/// machine, phases, status, builder lines.
type Outcome = (Option<String>, Vec<Phase>, String, Vec<String>);

fn outcome(fed: &Fed) -> Vec<Outcome> {
    fed.progress
        .derivations()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let status = match &d.status {
                DrvStatus::Failed { exit_code, .. } => format!("failed {exit_code:?}"),
                other => format!("{other:?}"),
            };
            let lines = fed.lines_of(i).iter().map(|s| s.to_string()).collect();
            // A derivation in the build plan starts queued; 2.26 prints
            // its plan where 2.8 does not, which is no difference in the build.
            let phases = fed.phases[i]
                .iter()
                .copied()
                .skip_while(|p| *p == Phase::Queued)
                .collect();
            (d.machine.clone(), phases, status, lines)
        })
        .collect()
}

#[test]
fn nix_226_gives_the_same_derivations_and_phases_as_nix_28() {
    for (new, old) in [
        ("nix226-local", "nix28-local"),
        ("nix226-ssh", "nix28-ssh"),
        ("nix226-failure", "nix28-failure"),
    ] {
        let (new_t, old_t) = (transcript(new), transcript(old));
        assert_eq!(new_t.exit, old_t.exit, "{new} vs {old}");
        let (new_fed, old_fed) = (feed(&new_t), feed(&old_t));
        assert_eq!(outcome(&new_fed), outcome(&old_fed), "{new} vs {old}");
        assert_eq!(
            new_fed.progress.derivations()[0].drv,
            first_build_drv(&new_t)
        );
        assert_eq!(
            new_fed.progress.counts(),
            old_fed.progress.counts(),
            "{new} vs {old}"
        );
        assert_eq!(
            new_fed.progress.errors().len(),
            old_fed.progress.errors().len(),
            "{new} vs {old}"
        );
    }
    // Spelled out once, so that two equally wrong folds cannot pass.
    let fed = feed(&transcript("nix226-failure"));
    let drv = &fed.progress.derivations()[0];
    assert_eq!(drv.machine.as_deref(), Some("ssh://b1"));
    assert!(
        matches!(&drv.status, DrvStatus::Failed { exit_code: Some(3), message }
            if message.ends_with("failed with exit code 3")),
        "{:?}",
        drv.status
    );
}

// ---- nothing panics

/// A JSON value of any shape Nix never sends, or of the shapes it does.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        Just(json!(18446744073709551615u64)),
        ".*".prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Texts that reach the fold's string matching: hook steps, waits,
/// failures, with store paths, quotes and colours in odd places.
fn nixish_text() -> BoxedStrategy<String> {
    let prefix = prop_oneof![
        Just("connecting to '"),
        Just("waiting for the upload lock to '"),
        Just("copying dependencies to '"),
        Just("copying outputs from '"),
        Just("waiting for a machine to build '"),
        Just("waiting for lock on '"),
        Just("error: build of '/nix/store/"),
        Just("builder for '/nix/store/"),
        Just("\u{1b}[31;1merror:\u{1b}[0m "),
        Just(""),
    ];
    let middle = prop_oneof![
        Just("ssh://b1".to_string()),
        Just("00000000000000000000000000000000-a.drv".to_string()),
        Just("/nix/store/.drv".to_string()),
        "\\PC{0,20}",
    ];
    let suffix = prop_oneof![
        Just("'".to_string()),
        Just("' failed with exit code 3".to_string()),
        Just("' failed with exit code 99999999999999999999".to_string()),
        Just(" timed out".to_string()),
        "\\PC{0,10}",
    ];
    (prefix, middle, suffix)
        .prop_map(|(p, m, s)| format!("{p}{m}{s}"))
        .boxed()
}

fn number_or_junk() -> BoxedStrategy<Value> {
    prop_oneof![
        (0u64..8).prop_map(Value::from),
        (95u64..115).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..0).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!("105")),
        Just(json!([105])),
        Just(Value::Null),
    ]
    .boxed()
}

/// An object shaped like Nix's records, with every field possibly wrong.
fn record_like() -> BoxedStrategy<Value> {
    let action = prop_oneof![
        Just(json!("start")),
        Just(json!("stop")),
        Just(json!("result")),
        Just(json!("msg")),
        Just(json!("setPhase")),
        ".{0,8}".prop_map(Value::from),
        any_value(),
    ]
    .boxed();
    let text = prop_oneof![nixish_text().prop_map(Value::from), any_value()];
    let fields = prop_oneof![
        prop::collection::vec(
            prop_oneof![
                nixish_text().prop_map(Value::from),
                number_or_junk(),
                any_value()
            ],
            0..6
        )
        .prop_map(Value::Array),
        any_value(),
    ];
    (
        action,
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
        prop::option::of(number_or_junk()),
        prop::option::of(text.clone()),
        prop::option::of(fields),
        prop::option::of(text.clone()),
        prop::option::of(text),
    )
        .prop_map(
            |(action, id, parent, level, kind, text, fields, msg, phase)| {
                let mut object = serde_json::Map::new();
                object.insert("action".into(), action);
                for (key, value) in [
                    ("id", id),
                    ("parent", parent),
                    ("level", level),
                    ("type", kind),
                    ("text", text),
                    ("fields", fields),
                    ("msg", msg),
                    ("phase", phase),
                ] {
                    if let Some(value) = value {
                        object.insert(key.into(), value);
                    }
                }
                Value::Object(object)
            },
        )
        .boxed()
}

/// Numbers serde_json cannot hold in a u64 or an f64, written out raw.
fn huge_numbers() -> BoxedStrategy<String> {
    let number = prop_oneof![
        "[1-9][0-9]{20,40}",
        "-[1-9][0-9]{0,30}",
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("18446744073709551616".to_string()),
    ];
    let action = prop::sample::select(vec!["start", "stop", "result", "msg"]);
    (action, number.clone(), number.clone(), number).prop_map(|(action, id, kind, field)| {
        format!(
            r#"@nix {{"action":"{action}","id":{id},"level":{field},"type":{kind},"fields":[{field},"{id}",[{field}]],"msg":"m","text":"t"}}"#
        )
    })
    .boxed()
}

fn any_line() -> BoxedStrategy<String> {
    prop_oneof![
        ".*",
        any::<String>(),
        any::<String>().prop_map(|s| format!("@nix {s}")),
        any::<String>().prop_map(|s| format!("<3>@nix {s}")),
        record_like().prop_map(|v| format!("@nix {v}")),
        record_like().prop_map(|v| format!("@nix {v}")),
        record_like().prop_map(|v| format!("<6>@nix {v}\r\n")),
        huge_numbers(),
        // Real lines, so sequences mix sense and nonsense.
        prop::sample::select(real_lines()),
    ]
    .boxed()
}

fn real_lines() -> Vec<String> {
    [
        "nix28-fanout",
        "nix28-ssh-ng",
        "nix28-failure",
        "nix226-ssh",
    ]
    .into_iter()
    .flat_map(|name| transcript(name).lines)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_line_panics_the_parser(line in any_line()) {
        let record = parse_line(&line);
        // What is not understood is kept whole.
        if let Record::Plain(text) = record {
            let trimmed = line.strip_suffix('\n').unwrap_or(&line);
            let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
            prop_assert_eq!(text, trimmed);
        }
    }

    #[test]
    fn no_sequence_panics_the_fold_or_the_job(
        lines in prop::collection::vec(any_line(), 1..40),
        cancel_at in prop::option::of(0usize..40),
        exit in prop::option::of(-1i32..300),
    ) {
        let mut progress = BuildProgress::new();
        let mut job = pinned_job("ssh://b1");
        let start = Instant::now();
        job.handle(Event::Spawned { pid: 1 }, start);
        for (i, line) in lines.iter().enumerate() {
            let now = start + Duration::from_millis(i as u64);
            let before = progress.derivations().len();
            if let Some(LogLine { drv: Some(drv), .. }) = progress.apply(parse_line(line), now) {
                prop_assert!(drv < progress.derivations().len());
            }
            prop_assert!(progress.derivations().len() >= before);
            if cancel_at == Some(i) {
                job.handle(Event::CancelRequested, now);
            }
            job.handle(Event::Stderr(line.clone()), now);
        }
        let end = start + Duration::from_secs(1);
        progress.stop_all(end);
        prop_assert!(progress.derivations().iter().all(|d| !d.is_running()));
        job.handle(Event::Exited { code: exit, signal: exit.is_none().then_some(9) }, end);
        if job.state == State::CheckingBuilders {
            job.handle(Event::BuildersChecked(Vec::new()), end);
        }
        prop_assert!(job.is_finished());
        prop_assert!(job.exit_status().is_some());
    }
}
