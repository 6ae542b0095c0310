//! Ingest 1,000,000 internal-json log lines through a job: parsing, the
//! per-derivation progress fold and the capped in-memory log, all that
//! `Job::handle(Event::Stderr(..))` does for each line Nix writes (the log
//! file's write is the runner's, and left out). For scale:
//! nix-output-monitor took 25 s on a 1M-line log.
//!
//! - `cargo bench --bench ingest`: one timed pass over 1M lines (printed as
//!   lines/s), then criterion on a 100k-line slice (throughput in lines/s).
//! - `cargo bench --bench ingest -- --peak`: one pass over 1M lines made as
//!   they are fed (the input is never held whole), printing the process's
//!   peak memory (VmHWM) before and after.
//!
//! The stream has the shapes of tests/fixtures/internal-json: four builds
//! at a time on four builders, each with its hook steps, phases, progress
//! counts and thousands of builder lines (compiler lines, test results with
//! colours and quotes), one build after another in each slot.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use rbtop::jobs::job::{Event, Graces, Job, JobId};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};
use rbtop::jobs::log::DEFAULT_LINE_CAP;

const FULL: usize = 1_000_000;
const SLICE: usize = 100_000;
const SLOTS: usize = 4;

/// A small deterministic generator (xorshift64*), so every run feeds the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Build {
    id: u64,
    lines_left: u64,
    line: u64,
}

/// The stream of stderr lines, made on demand.
struct Stream {
    rng: Rng,
    pending: std::collections::VecDeque<String>,
    slots: [Option<Build>; SLOTS],
    next_id: u64,
    builds_started: u64,
    builds_done: u64,
}

const REALISE: u64 = 1;
const BUILDS: u64 = 2;

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn drv_path(n: u64) -> String {
    format!("/nix/store/{n:032}-rbtop-bench-part{n}.drv")
}

impl Stream {
    fn new() -> Stream {
        let mut pending = std::collections::VecDeque::new();
        pending.push_back(
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/work/bench/default.nix'"}"#
                .to_string(),
        );
        for (id, kind) in [(REALISE, 102), (BUILDS, 104), (3, 103)] {
            pending.push_back(format!(
                r#"@nix {{"action":"start","id":{id},"level":0,"text":"","type":{kind}}}"#
            ));
        }
        Stream {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            pending,
            slots: [None, None, None, None],
            next_id: 100,
            builds_started: 0,
            builds_done: 0,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn hook_step(&mut self, text: &str, open: bool) -> u64 {
        let id = self.id();
        self.pending.push_back(format!(
            r#"@nix {{"action":"start","id":{id},"level":4,"text":{},"type":0}}"#,
            quoted(text)
        ));
        if !open {
            self.stop(id);
        }
        id
    }

    /// A hook step that copies `paths` store paths (a `CopyPaths` inside it).
    fn copy(&mut self, step: &str, paths: u64) {
        let copying = self.hook_step(step, true);
        let id = self.id();
        self.pending.push_back(format!(
            r#"@nix {{"action":"start","id":{id},"level":3,"text":"copying {paths} paths","type":103}}"#
        ));
        self.stop(id);
        self.stop(copying);
    }

    fn stop(&mut self, id: u64) {
        self.pending
            .push_back(format!(r#"@nix {{"action":"stop","id":{id}}}"#));
    }

    fn progress(&mut self) {
        let running = self.slots.iter().filter(|s| s.is_some()).count();
        let (done, expected) = (self.builds_done, self.builds_started + 4);
        self.pending.push_back(format!(
            r#"@nix {{"action":"result","fields":[{done},{expected},{running},0],"id":{BUILDS},"type":105}}"#
        ));
        self.pending.push_back(format!(
            r#"@nix {{"action":"result","fields":[101,0],"id":{REALISE},"type":106}}"#
        ));
    }

    fn start_build(&mut self, slot: usize) {
        let machine = format!("ssh://b{}", slot + 1);
        self.hook_step(&format!("connecting to '{machine}'"), false);
        let id = self.id();
        self.builds_started += 1;
        let drv = drv_path(self.builds_started);
        self.pending.push_back(format!(
            r#"@nix {{"action":"start","fields":[{},{},1,1],"id":{id},"level":3,"text":{},"type":105}}"#,
            quoted(&drv),
            quoted(&machine),
            quoted(&format!("building '{drv}' on '{machine}'"))
        ));
        self.progress();
        self.hook_step(
            &format!("waiting for the upload lock to '{machine}'"),
            false,
        );
        self.copy(&format!("copying dependencies to '{machine}'"), 0);
        self.slots[slot] = Some(Build {
            id,
            lines_left: 2_000 + self.rng.below(20_000),
            line: 0,
        });
    }

    fn finish_build(&mut self, slot: usize, build_id: u64) {
        let machine = format!("ssh://b{}", slot + 1);
        self.copy(&format!("copying outputs from '{machine}'"), 1);
        self.slots[slot] = None;
        self.builds_done += 1;
        self.progress();
        self.stop(build_id);
    }

    fn build_line(&mut self, id: u64, line: u64) {
        let n = self.rng.below(10_000);
        let text = match self.rng.below(16) {
            0..=7 => format!(
                "gcc -O2 -fPIC -Wall -Iinclude -DNDEBUG -c src/module_{n}.c -o build/module_{n}.o"
            ),
            8..=10 => format!("  CC       lib/libbench_la-part{n}.lo"),
            11 => format!(
                "[{:>3}%] Building CXX object src/CMakeFiles/bench.dir/unit_{n}.cpp.o",
                line % 101
            ),
            12 => format!("checking for \"header_{n}.h\"... yes"),
            13 => format!("\u{1b}[32mPASS\u{1b}[0m tests/case_{n} ({} ms)", n % 97),
            14 => format!("warning: unused variable 'tmp_{n}' [-Wunused-variable]"),
            _ => String::new(),
        };
        self.pending.push_back(format!(
            r#"@nix {{"action":"result","fields":[{}],"id":{id},"type":101}}"#,
            quoted(&text)
        ));
        // The builder's phases, now and then (setPhase relayed as result 104).
        if line % 2_500 == 1 {
            let phase = ["configurePhase", "buildPhase", "checkPhase", "installPhase"]
                [(line / 2_500 % 4) as usize];
            self.pending.push_back(format!(
                r#"@nix {{"action":"result","fields":["{phase}"],"id":{id},"type":104}}"#
            ));
        }
    }

    /// Make at least one more line.
    fn step(&mut self) {
        let slot = self.rng.below(SLOTS as u64) as usize;
        match self.slots[slot].as_mut() {
            None => self.start_build(slot),
            Some(build) if build.lines_left == 0 => {
                let id = build.id;
                self.finish_build(slot, id);
            }
            Some(build) => {
                build.lines_left -= 1;
                build.line += 1;
                let (id, line) = (build.id, build.line);
                self.build_line(id, line);
            }
        }
    }
}

impl Iterator for Stream {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        while self.pending.is_empty() {
            self.step();
        }
        self.pending.pop_front()
    }
}

fn job() -> Job {
    let request = LaunchRequest {
        args: vec!["default.nix".into()],
        placement: Placement::Fleet { builders: None },
        tool: BuildTool::NixBuild,
    };
    let mut job = Job::new(
        JobId(1),
        request,
        vec!["nix".into(), "build".into()],
        DEFAULT_LINE_CAP,
        Graces::default(),
        Instant::now(),
    );
    job.handle(Event::Spawned { pid: 1 }, Instant::now());
    job
}

/// Feed every line; the clock is read once per line, as the runner does.
fn ingest(job: &mut Job, lines: impl IntoIterator<Item = String>) -> usize {
    let mut effects = 0;
    for line in lines {
        effects += job.handle(Event::Stderr(line), Instant::now()).len();
    }
    effects
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn describe(job: &Job) -> String {
    let counts = job.progress.counts();
    format!(
        "{} derivations ({} done of {} expected), log: {} lines kept of {} ({} dropped)",
        job.progress.derivations().len(),
        counts.done,
        counts.expected,
        job.log.entries().len(),
        job.log.total(),
        job.log.dropped()
    )
}

/// One pass over 1M lines made as they are fed: the memory is the job's.
fn peak() {
    let (hwm_before, rss_before) = memory();
    println!(
        "before: VmHWM {:.1} MiB, VmRSS {:.1} MiB",
        mib(hwm_before),
        mib(rss_before)
    );
    let mut job = job();
    let started = Instant::now();
    ingest(&mut job, Stream::new().take(FULL));
    let elapsed = started.elapsed();
    let (hwm_after, rss_after) = memory();
    println!(
        "after {FULL} lines ({:.2} s, generation included): VmHWM {:.1} MiB, VmRSS {:.1} MiB; \
         the ingest's peak: +{:.1} MiB",
        elapsed.as_secs_f64(),
        mib(hwm_after),
        mib(rss_after),
        mib(hwm_after.saturating_sub(hwm_before))
    );
    println!("{}", describe(&black_box(job)));
}

/// One timed pass over 1M lines made beforehand.
fn full_pass() {
    let lines: Vec<String> = Stream::new().take(FULL).collect();
    let log_lines = lines
        .iter()
        .filter(|l| l.ends_with(r#""type":101}"#))
        .count();
    let mut job = job();
    let started = Instant::now();
    let effects = ingest(&mut job, lines);
    let elapsed = started.elapsed();
    println!(
        "ingest {FULL} lines ({log_lines} builder lines): {:.3} s, {:.0} lines/s ({effects} effects)",
        elapsed.as_secs_f64(),
        FULL as f64 / elapsed.as_secs_f64()
    );
    println!("{}", describe(&job));
}

fn slice(c: &mut Criterion) {
    let lines: Vec<String> = Stream::new().take(SLICE).collect();
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(SLICE as u64));
    group.bench_function("100k internal-json lines through Job::handle", |b| {
        b.iter_batched(
            || (job(), lines.clone()),
            |(mut job, lines)| {
                ingest(&mut job, lines);
                job
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--peak") {
        peak();
        return;
    }
    // `cargo bench` passes --bench; under `cargo test` only criterion's quick check runs.
    if args.iter().any(|a| a == "--bench") {
        full_pass();
    }
    let mut criterion = Criterion::default().configure_from_args();
    slice(&mut criterion);
    criterion.final_summary();
}
