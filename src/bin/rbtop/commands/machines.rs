//! `rbtop machines [--json]`: the resolved machine list and its diagnostics.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use rbtop::diagnostics::Diagnostic;
use rbtop::machines::Machine;
use rbtop::sources::Resolved;

use crate::cli::MachinesArgs;
use crate::config::Settings;
use crate::setup;

/// `rbtop machines`: the table (diagnostics on stderr) or the JSON.
pub fn run(settings: &Settings, args: &MachinesArgs) -> ExitCode {
    let resolved = match setup::resolve_machines(settings) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    // A closed pipe (`rbtop machines | head`) is not an error worth a panic.
    if args.json {
        let _ = std::io::stdout().write_all((render_json(&resolved) + "\n").as_bytes());
    } else {
        // Written as it is made: a million machines are not held twice.
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let _ = write_table(&resolved, &mut stdout).and_then(|()| stdout.flush());
    }
    if !args.json {
        let _ = std::io::stderr().write_all(render_diagnostics(&resolved).as_bytes());
    }
    ExitCode::from(u8::from(resolved.has_errors()))
}

/// The `--json` document. Field order and names are a stable interface.
#[derive(Debug, Serialize)]
pub struct MachinesReport<'a> {
    pub machines: Vec<MachineJson<'a>>,
    pub errors: Vec<DiagnosticJson>,
    pub warnings: Vec<DiagnosticJson>,
}

#[derive(Debug, Serialize)]
pub struct MachineJson<'a> {
    pub uri: &'a str,
    pub protocol: &'a str,
    pub user: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    pub systems: &'a [String],
    pub ssh_key: Option<&'a str>,
    pub max_jobs: u32,
    pub speed_factor: f64,
    pub supported_features: &'a [String],
    pub mandatory_features: &'a [String],
    pub public_host_key: Option<&'a str>,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct DiagnosticJson {
    /// `file:line`.
    pub source: String,
    pub message: String,
}

impl<'a> From<&'a Machine> for MachineJson<'a> {
    fn from(m: &'a Machine) -> Self {
        MachineJson {
            uri: &m.store.uri,
            protocol: &m.store.protocol,
            user: m.store.user.as_deref(),
            host: m.store.host.as_deref(),
            port: m.store.port,
            systems: &m.systems,
            ssh_key: m.ssh_key.as_deref(),
            max_jobs: m.max_jobs,
            speed_factor: m.speed_factor,
            supported_features: &m.supported_features,
            mandatory_features: &m.mandatory_features,
            public_host_key: m.public_host_key.as_deref(),
            source: m.location.to_string(),
        }
    }
}

impl From<&Diagnostic> for DiagnosticJson {
    fn from(d: &Diagnostic) -> Self {
        // `source` is `file:line`; the character column goes into the message.
        let message = match d.location.column {
            Some(col) => format!("col {col}: {}", d.message),
            None => d.message.clone(),
        };
        DiagnosticJson {
            source: d.location.to_string(),
            message,
        }
    }
}

pub fn report(resolved: &Resolved) -> MachinesReport<'_> {
    MachinesReport {
        machines: resolved
            .parsed
            .machines
            .iter()
            .map(MachineJson::from)
            .collect(),
        errors: resolved.parsed.errors().map(DiagnosticJson::from).collect(),
        warnings: resolved
            .parsed
            .warnings()
            .map(DiagnosticJson::from)
            .collect(),
    }
}

pub fn render_json(resolved: &Resolved) -> String {
    serde_json::to_string_pretty(&report(resolved)).expect("report serialises")
}

pub(crate) fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

/// Supported features, then mandatory ones marked with `*`.
pub fn features_cell(m: &Machine) -> String {
    let mut all: Vec<String> = m.supported_features.clone();
    all.extend(m.mandatory_features.iter().map(|f| format!("{f}*")));
    or_dash(&all)
}

/// The human table (stdout). Empty input gives the "where I looked" help instead.
#[cfg(test)]
pub fn render_table(resolved: &Resolved) -> String {
    let mut out = Vec::new();
    write_table(resolved, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("the table is UTF-8")
}

/// [`render_table`] written to `out` line by line.
pub fn write_table(resolved: &Resolved, out: &mut impl Write) -> std::io::Result<()> {
    let machines = &resolved.parsed.machines;
    if machines.is_empty() {
        return out.write_all(render_empty(resolved).as_bytes());
    }
    // Written in two passes over the machines (widths, then lines), not
    // through comfy-table: a million-line machines file must not cost a
    // table's worth of cells in memory, nor the whole text.
    let header = [
        "URI", "SYSTEMS", "JOBS", "SPEED", "FEATURES", "SSH KEY", "PINNED", "SOURCE",
    ];
    let row = |m: &Machine| {
        [
            m.store.uri.clone(),
            or_dash(&m.systems),
            m.max_jobs.to_string(),
            format!("{}", m.speed_factor),
            features_cell(m),
            m.ssh_key.clone().unwrap_or_else(|| "-".into()),
            if m.public_host_key.is_some() {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            m.location.to_string(),
        ]
        .map(|cell| rbtop::sanitize::for_terminal(&cell).into_owned())
    };
    super::write_aligned_columns(out, header, || machines.iter().map(row))?;
    if machines.iter().any(|m| !m.mandatory_features.is_empty()) {
        out.write_all(b"(* mandatory feature: only builds that require it are sent there)\n")?;
    }
    Ok(())
}

pub fn render_empty(resolved: &Resolved) -> String {
    let mut out = String::from("No builders configured. rbtop looked at, in order:\n");
    for place in &resolved.consulted {
        out.push_str(&format!("  - {}\n", rbtop::sanitize::for_terminal(place)));
    }
    out.push_str(&format!(
        "To add one, put a line such as\n  ssh://nix@builder.example {} - 4 1 big-parallel\n\
         in {} (or set `builders` in nix.conf, or pass --builders).\n",
        resolved.local_system,
        resolved.default_machines_file.display()
    ));
    out
}

/// Diagnostics for stderr, one block each, then a count.
pub fn render_diagnostics(resolved: &Resolved) -> String {
    let parsed = &resolved.parsed;
    let mut out = String::new();
    for d in &parsed.diagnostics {
        out.push_str(&d.render());
        out.push('\n');
    }
    let errors = parsed.errors().count();
    let warnings = parsed.warnings().count();
    if errors + warnings > 0 {
        out.push_str(&format!(
            "{} machine(s) read, {errors} error(s), {warnings} warning(s)\n",
            parsed.machines.len()
        ));
    }
    out
}
