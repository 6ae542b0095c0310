//! One frame of the hosts view with 1,000 hosts, on ratatui's TestBackend
//! (the terminal's own cost, writing the changed cells, is left out), and
//! the filter + sort pass that precedes a frame after each result.
//! `cargo bench --bench render`.
//!
//! The TUI is the binary's, not the library's: the bench compiles the front
//! end's modules itself, at the paths `src/bin/rbtop/main.rs` declares them,
//! so that `crate::tui::…` means the same here as there.
#![allow(dead_code, unused_imports)]

#[macro_use]
#[path = "../src/bin/rbtop/say.rs"]
mod say;
#[path = "../src/bin/rbtop/cli.rs"]
mod cli;
#[path = "../src/bin/rbtop/commands/mod.rs"]
mod commands;
#[path = "../src/bin/rbtop/config.rs"]
mod config;
// Under `cfg(test)` (clippy --all-targets) the TUI declares its fixture itself.
#[cfg(not(test))]
#[path = "../src/bin/rbtop/tui/fixture.rs"]
mod fixture;
#[cfg(test)]
use tui::fixture;
#[path = "../src/bin/rbtop/logging.rs"]
mod logging;
#[path = "../src/bin/rbtop/setup.rs"]
mod setup;
#[path = "../src/bin/rbtop/signals.rs"]
mod signals;
#[path = "../src/bin/rbtop/tui/mod.rs"]
mod tui;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tui::action::Action;
use tui::view;

fn frame_of_1000_hosts(c: &mut Criterion) {
    let app = fixture::large_fleet(1000);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("render hosts view, 1000 hosts, 200x60", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| {
                    black_box(view::render(frame, &app, Instant::now()));
                })
                .unwrap();
        })
    });

    let mut detail = fixture::large_fleet(1000);
    detail.update(Action::Bottom);
    detail.update(Action::Detail);
    c.bench_function("render hosts + detail, 1000 hosts, 200x60", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| {
                    black_box(view::render(frame, &detail, Instant::now()));
                })
                .unwrap();
        })
    });

    let mut sorted = fixture::large_fleet(1000);
    sorted.update(Action::NextSort);
    sorted.filter = "x86".into();
    c.bench_function("filter + sort rows, 1000 hosts", |b| {
        b.iter(|| {
            sorted.refresh_rows();
            black_box(sorted.rows().len())
        })
    });
}

/// Resident memory (`VmRSS`, KiB) of this process now.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// rbtop's memory for 1,000 hosts (the simulated fleet: each host's report
/// with facts and history, as probes leave them), printed before criterion
/// starts: resident before the app, after it, and after one frame.
fn memory_of_1000_hosts(_: &mut Criterion) {
    let before = rss_kib();
    let app = fixture::large_fleet(1000);
    let with_app = rss_kib();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    terminal
        .draw(|frame| {
            black_box(view::render(frame, &app, Instant::now()));
        })
        .unwrap();
    let drawn = rss_kib();
    println!(
        "memory, 1000 hosts: process RSS {:.1} MiB before the app, {:.1} MiB with it \
         (+{:.1} MiB), {:.1} MiB after a 200x60 frame",
        before as f64 / 1024.0,
        with_app as f64 / 1024.0,
        with_app.saturating_sub(before) as f64 / 1024.0,
        drawn as f64 / 1024.0
    );
    black_box(&app);
}

criterion_group!(benches, memory_of_1000_hosts, frame_of_1000_hosts);
criterion_main!(benches);
