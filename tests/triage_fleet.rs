//! Triage (issue #6) against a real fleet: `rbtop check --json` says, per
//! host, which of its slots this machine's build hooks hold (`slots`), which
//! hook is copying inputs to it (`upload_lock`), and which builds run on it
//! and for whom (`builds`: `this-machine`, `ssh`, `builder-local`,
//! `orphan`). Each trial sets a scenario up with real Nix 2.8 builds on the
//! loopback fleet (tests/support/triage.rs), checks it is in place by looking
//! directly (the builder's processes, `/proc/locks`, `current-load`), and
//! only then asks rbtop. One fleet serves every trial, so this binary has its
//! own main (libtest-mimic). Needs root; fails, never skips.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/fleet_trials.rs"]
mod fleet_trials;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/triage.rs"]
mod triage;

use std::collections::HashSet;
use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use fleet::Fleet;
use fleet_trials::ensure;
use libtest_mimic::Failed;
use sandbox::Sandbox;
use serde_json::Value;
use triage::{
    ByHand, OnHost, Proc, Running, build_by_hand, fill_slots, flock_holders, hold_upload_lock,
    is_build_hook, make_orphan, nothing_left, slot_file,
};

/// No rbtop check may take longer (it has a 10 s probe limit of its own).
const CHECK_LIMIT: Duration = Duration::from_secs(60);
/// Slack for times rbtop reports: whole seconds, another clock reading.
const SLACK: Duration = Duration::from_secs(2);

/// One `rbtop --machines <healthy hosts> check --json`.
struct Checked {
    json: Value,
    /// When rbtop started and ended (it looked somewhere in between).
    started: Instant,
    ended: Instant,
    ended_at: SystemTime,
    text: String,
}

/// The fleet's healthy hosts (b*, t1), each `ssh://` with 2 slots: the
/// hosts' order and slot files are those the scenarios use.
fn healthy_machines(fleet: &Fleet) -> String {
    fleet
        .hosts
        .iter()
        .filter(|h| h.kind == "healthy")
        .map(|h| format!("ssh://{} x86_64-linux - 2 1 - - -\n", h.name))
        .collect()
}

fn check(fleet: &Fleet) -> Result<Checked, Failed> {
    let sandbox = Sandbox::new("rbtop-triage");
    let machines = sandbox.write("machines", &healthy_machines(fleet));
    let stdout = sandbox.path("stdout");
    let stderr = sandbox.path("stderr");
    let started = Instant::now();
    let mut child = sandbox
        .rbtop()
        .env("NIX_CONF_DIR", sandbox.path("nixconf"))
        .env("NIX_SSHOPTS", fleet.nix_sshopts())
        .arg("--machines")
        .arg(&machines)
        .args(["check", "--json"])
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .map_err(|e| format!("cannot start rbtop: {e}"))?;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHECK_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("rbtop check still running after {CHECK_LIMIT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ended = Instant::now();
    let ended_at = SystemTime::now();
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    let text = format!("rbtop check --json: {status}\n{out}\n--- stderr\n{err}");
    let json: Value = serde_json::from_str(&out).map_err(|e| format!("not JSON ({e}):\n{text}"))?;
    ensure(status.code() == Some(0), || {
        format!("every host here is up: exit 0 expected\n{text}")
    })?;
    Ok(Checked {
        json,
        started,
        ended,
        ended_at,
        text,
    })
}

impl Checked {
    fn host(&self, name: &str) -> Result<&Value, Failed> {
        self.json["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["host"] == name))
            .ok_or_else(|| format!("no host {name}:\n{}", self.text).into())
    }

    /// Every host's name.
    fn hosts(&self) -> Vec<String> {
        self.json["hosts"]
            .as_array()
            .map(|hosts| {
                hosts
                    .iter()
                    .filter_map(|h| h["host"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn uint(value: &Value, field: &str, host: &Value) -> Result<u64, Failed> {
    value[field]
        .as_u64()
        .ok_or_else(|| format!("{field} is not a whole number in {host:#}").into())
}

/// `slots`: (busy, max, holders).
fn slots(host: &Value) -> Result<(u64, u64, &Vec<Value>), Failed> {
    let slots = &host["slots"];
    let holders = slots["holders"]
        .as_array()
        .ok_or_else(|| format!("no slots.holders list in {host:#}"))?;
    Ok((
        uint(slots, "busy", host)?,
        uint(slots, "max", host)?,
        holders,
    ))
}

fn builds(host: &Value) -> Result<&Vec<Value>, Failed> {
    host["builds"]
        .as_array()
        .ok_or_else(|| format!("no builds list in {host:#}").into())
}

/// An RFC 3339 `field` of `value` that falls between `from` and `to`
/// (give or take SLACK).
fn since_within(
    value: &Value,
    field: &str,
    from: SystemTime,
    to: SystemTime,
    host: &Value,
) -> Result<(), Failed> {
    let text = value[field]
        .as_str()
        .ok_or_else(|| format!("{field} is not a string in {host:#}"))?;
    let at: SystemTime = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{field} {text:?} is not RFC 3339 ({e}) in {host:#}"))?
        .into();
    ensure(at + SLACK >= from && at <= to + SLACK, || {
        let ago = |t: SystemTime| {
            SystemTime::now()
                .duration_since(t)
                .map_or("in the future".into(), |d| {
                    format!("{:.1}s ago", d.as_secs_f64())
                })
        };
        format!(
            "{field} {text} ({}) should fall while the scenario ran, from {} to {}: {host:#}",
            ago(at),
            ago(from),
            ago(to)
        )
    })
}

/// A host this machine uses nothing of and that runs no build.
fn idle(checked: &Checked, name: &str) -> Result<(), Failed> {
    let h = checked.host(name)?;
    let (busy, max, holders) = slots(h)?;
    ensure(busy == 0 && holders.is_empty() && max == 2, || {
        format!("{name}: no slot of its 2 should be busy: {h:#}")
    })?;
    ensure(h["upload_lock"].is_null(), || {
        format!("{name}: nobody uploads to it: {h:#}")
    })?;
    let b = builds(h)?;
    ensure(b.is_empty(), || {
        format!(
            "{name}: no build runs on it. (Each fleet host has its own /nix, but all \
             share this machine's pid namespace: its /proc shows every host's builders, \
             those that see another /nix/store are not its own.) {h:#}"
        )
    })
}

/// Every host but those in `busy` is idle.
fn others_idle(checked: &Checked, busy: &[&str]) -> Result<(), Failed> {
    let hosts = checked.hosts();
    ensure(hosts.len() >= 4, || {
        format!("b1, b2, b3 and t1 expected:\n{}", checked.text)
    })?;
    for name in hosts.iter().filter(|h| !busy.contains(&h.as_str())) {
        idle(checked, name)?;
    }
    Ok(())
}

/// The entry of `builds` for `run`, checked against what was seen on the
/// host `on`: its builder's pid, alive there, run by root for `client`,
/// its derivation, and an age that fits the scenario.
fn build_entry<'a>(
    host: &'a Value,
    run: &Running,
    client: &str,
    on: &OnHost,
    started: Instant,
    checked: &Checked,
) -> Result<&'a Value, Failed> {
    let list = builds(host)?;
    let named: Vec<&Value> = list.iter().filter(|b| b["name"] == run.name).collect();
    let [entry] = named.as_slice() else {
        return Err(format!("one build named {} expected: {host:#}", run.name).into());
    };
    let pid = uint(entry, "pid", host)?;
    ensure(pid == u64::from(run.builder.pid), || {
        format!(
            "{}: pid should be its builder's, {}: {entry:#}",
            run.name,
            run.builder.describe()
        )
    })?;
    ensure(run.builder.alive() && on.contains(pid as u32), || {
        format!("{}: builder {pid} should be alive on the host", run.name)
    })?;
    // Not in the contract, but when rbtop names the process running the
    // build (`serving_pid`), it is the builder's parent.
    if !entry["serving_pid"].is_null() {
        let parent = run.builder.stat().map(|s| s.ppid).unwrap_or_default();
        ensure(entry["serving_pid"] == parent, || {
            format!(
                "{}: serving_pid should be the builder's parent, {}: {entry:#}",
                run.name,
                Proc::of(parent).map_or("?".into(), |p| p.describe())
            )
        })?;
    }
    ensure(entry["client"] == client, || {
        format!("{}: client should be {client:?}: {entry:#}", run.name)
    })?;
    ensure(entry["user"] == "root", || {
        format!(
            "{}: builds run as root in this fleet (build-users-group is empty): {entry:#}",
            run.name
        )
    })?;
    ensure(
        entry["drv"].is_null() || entry["drv"] == run.drv.as_str(),
        || format!("{}: drv should be null or {}: {entry:#}", run.name, run.drv),
    )?;
    let elapsed = entry["elapsed_s"]
        .as_f64()
        .ok_or_else(|| format!("{}: elapsed_s is not a number: {entry:#}", run.name))?;
    // It started after `started` and before it was seen; rbtop looked while
    // it ran.
    let least = checked
        .started
        .saturating_duration_since(run.seen)
        .as_secs_f64()
        - SLACK.as_secs_f64();
    let most = checked.ended.duration_since(started).as_secs_f64() + SLACK.as_secs_f64();
    ensure(elapsed >= least.max(0.0) && elapsed <= most, || {
        format!(
            "{}: elapsed_s {elapsed} should be between {least:.1} and {most:.1}: {entry:#}",
            run.name
        )
    })?;
    Ok(entry)
}

// ---- the trials

/// One nix-build of fanout.nix pinned to b1 with 2 slots: both parts build
/// on b1 at once. rbtop shows both slots held by this machine's two hooks
/// and both builds as this machine's, and nothing on the other hosts.
fn two_builds_fill_b1s_two_slots_for_this_machine(fleet: &Fleet) -> Result<(), Failed> {
    let mut filled = fill_slots(fleet, "b1", 2)?;
    let checked = check(fleet)?;
    // The slots' holders as they are now (they do not change while the
    // parts build).
    let holders_now: Vec<Vec<u32>> = (0..2).map(|k| flock_holders(&slot_file("b1", k))).collect();
    let b1 = checked.host("b1")?;
    let (busy, max, holders) = slots(b1)?;
    ensure(busy == 2 && max == 2 && holders.len() == 2, || {
        format!("b1: both of its 2 slots busy, 2 holders: {b1:#}")
    })?;
    let mut seen_slots = HashSet::new();
    for holder in holders {
        let slot = uint(holder, "slot", b1)?;
        let pid = uint(holder, "pid", b1)?;
        ensure(seen_slots.insert(slot) && slot < 2, || {
            format!("b1: holders should be slots 0 and 1: {b1:#}")
        })?;
        ensure(holders_now[slot as usize] == [pid as u32], || {
            format!(
                "b1: slot {slot}'s holder should be {:?} (/proc/locks): {b1:#}",
                holders_now[slot as usize]
            )
        })?;
        ensure(
            filled.hooks.iter().any(|h| u64::from(h.pid) == pid)
                && Proc::of(pid as u32).is_some_and(|p| p.alive())
                && is_build_hook(pid as u32),
            || {
                format!(
                    "b1: holder {pid} should be one of the live build hooks {:?}: {b1:#}",
                    filled.hooks.iter().map(Proc::describe).collect::<Vec<_>>()
                )
            },
        )?;
        since_within(holder, "since", filled.started_at, checked.ended_at, b1)?;
    }
    ensure(b1["upload_lock"].is_null(), || {
        format!("b1: the parts have no inputs, nothing is being uploaded: {b1:#}")
    })?;
    let list = builds(b1)?;
    ensure(list.len() == 2, || {
        format!("b1: exactly the 2 parts build there: {b1:#}")
    })?;
    for part in &filled.parts {
        build_entry(
            b1,
            part,
            "this-machine",
            &filled.on,
            filled.started,
            &checked,
        )?;
    }
    others_idle(&checked, &["b1"])?;
    filled.stop()
}

/// Two builds started on b1 itself, one by an operator over ssh
/// (`ssh b1 nix-build ...`), one at its console (`nsenter` into its mount
/// namespace): neither goes through a serving Nix process, so both are
/// `builder-local`, and no slot of this machine is busy.
fn builds_started_on_b1_itself_are_builder_local(fleet: &Fleet) -> Result<(), Failed> {
    let mut over_ssh = build_by_hand(fleet, "b1", ByHand::SshSession)?;
    let mut at_console = build_by_hand(fleet, "b1", ByHand::Console)?;
    let checked = check(fleet)?;
    let b1 = checked.host("b1")?;
    let (busy, _, holders) = slots(b1)?;
    ensure(busy == 0 && holders.is_empty(), || {
        format!("b1: this machine holds none of its slots: {b1:#}")
    })?;
    ensure(b1["upload_lock"].is_null(), || {
        format!("b1: nothing is uploaded: {b1:#}")
    })?;
    ensure(builds(b1)?.len() == 2, || {
        format!("b1: exactly 2 builds run there: {b1:#}")
    })?;
    for hand in [&over_ssh, &at_console] {
        build_entry(
            b1,
            &hand.build,
            "builder-local",
            &hand.on,
            hand.started,
            &checked,
        )
        .map_err(|e| format!("{:?}: {}", hand.how, e.message().unwrap_or_default()))?;
    }
    others_idle(&checked, &["b1"])?;
    at_console.stop()?;
    over_ssh.stop()
}

/// A build sent to b1 by another machine (a nix-build at b2's console,
/// pinned to b1: b2's own hook, b2's own slots): b1's `nix-store --serve
/// --write` builds it for an SSH client that holds none of this machine's
/// slots, so it is `ssh`; this machine's slots of b1 stay free, and b2
/// itself builds nothing.
fn a_build_sent_to_b1_by_another_machine_is_ssh(fleet: &Fleet) -> Result<(), Failed> {
    let mut sent = build_by_hand(fleet, "b1", ByHand::SentFrom("b2".into()))?;
    let checked = check(fleet)?;
    let b1 = checked.host("b1")?;
    let (busy, _, holders) = slots(b1)?;
    ensure(busy == 0 && holders.is_empty(), || {
        format!("b1: this machine holds none of its slots (b2's hook does, in b2's store): {b1:#}")
    })?;
    ensure(builds(b1)?.len() == 1, || {
        format!("b1: exactly 1 build runs there: {b1:#}")
    })?;
    build_entry(b1, &sent.build, "ssh", &sent.on, sent.started, &checked)?;
    others_idle(&checked, &["b1"])?;
    sent.stop()
}

/// A build on b1 whose client is gone: its serving `nix-store --serve
/// --write` is stopped and its ssh connection cut (everything of it here
/// SIGKILLed), so its builder runs on with nobody to collect it. rbtop calls
/// it an `orphan`; killing its process group leaves nothing.
fn a_build_whose_client_is_gone_is_an_orphan(fleet: &Fleet) -> Result<(), Failed> {
    let orphan = make_orphan(fleet, "b1")?;
    let left = orphan.remaining();
    ensure(left.len() >= 2, || {
        format!("the orphan's builder and its sleep should run: {left:?}")
    })?;
    let checked = check(fleet)?;
    let b1 = checked.host("b1")?;
    let (busy, _, holders) = slots(b1)?;
    ensure(busy == 0 && holders.is_empty(), || {
        format!("b1: the hook that held a slot is gone: {b1:#}")
    })?;
    ensure(builds(b1)?.len() == 1, || {
        format!("b1: only the orphan builds there: {b1:#}")
    })?;
    let run = Running {
        name: orphan.name.clone(),
        drv: orphan.drv.clone(),
        seed: orphan.seed.clone(),
        builder: orphan.builder,
        seen: orphan.seen,
    };
    build_entry(b1, &run, "orphan", &orphan.on, orphan.started, &checked)?;
    others_idle(&checked, &["b1"])?;
    // What the dashboard's K does to it, done here: its process group.
    orphan.builder.signal_group(libc::SIGKILL);
    nothing_left(&orphan)?;
    orphan.kill_remains();
    ensure(!orphan.serving.alive(), || {
        format!(
            "the serving process survived SIGKILL: {}",
            orphan.serving.describe()
        )
    })
}

/// A build whose input is being copied to b1, the copy held (b1's receiver
/// waits for that path's lock, which the test holds): rbtop names the hook
/// holding b1's upload lock, which also holds one of b1's slots. Once the
/// copy goes on, the build succeeds and the lock is free again.
fn the_upload_lock_names_the_hook_copying_to_b1(fleet: &Fleet) -> Result<(), Failed> {
    let mut hold = hold_upload_lock(fleet, "b1")?;
    let checked = check(fleet)?;
    let b1 = checked.host("b1")?;
    let lock = &b1["upload_lock"];
    ensure(lock.is_object(), || {
        format!(
            "b1: the hook {} holds its upload lock: {b1:#}",
            hold.hook.describe()
        )
    })?;
    ensure(uint(lock, "pid", b1)? == u64::from(hold.hook.pid), || {
        format!(
            "b1: upload_lock.pid should be the hook's, {}: {b1:#}",
            hold.hook.describe()
        )
    })?;
    since_within(lock, "since", hold.started_at, checked.ended_at, b1)?;
    let (busy, _, holders) = slots(b1)?;
    ensure(
        busy == 1 && holders.len() == 1 && holders[0]["pid"] == hold.hook.pid,
        || format!("b1: the uploading hook holds one slot: {b1:#}"),
    )?;
    others_idle(&checked, &["b1"])?;
    hold.release()?;
    let after = check(fleet)?;
    let b1 = after.host("b1")?;
    ensure(b1["upload_lock"].is_null(), || {
        format!("b1: the upload is over: {b1:#}")
    })?;
    let (busy, _, _) = slots(b1)?;
    ensure(busy == 0, || format!("b1: the build is over: {b1:#}"))
}

fn main() {
    fleet_trials::run_on_one_fleet(&[
        (
            "two_builds_fill_b1s_two_slots_for_this_machine",
            two_builds_fill_b1s_two_slots_for_this_machine,
        ),
        (
            "builds_started_on_b1_itself_are_builder_local",
            builds_started_on_b1_itself_are_builder_local,
        ),
        (
            "a_build_sent_to_b1_by_another_machine_is_ssh",
            a_build_sent_to_b1_by_another_machine_is_ssh,
        ),
        (
            "a_build_whose_client_is_gone_is_an_orphan",
            a_build_whose_client_is_gone_is_an_orphan,
        ),
        (
            "the_upload_lock_names_the_hook_copying_to_b1",
            the_upload_lock_names_the_hook_copying_to_b1,
        ),
    ]);
}
