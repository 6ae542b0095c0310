//! Substituters are checked as builders are: every `substituters` and
//! `extra-substituters` entry of nix.conf (as Nix resolves them), each
//! reached the way Nix reaches it: `ssh://`/`ssh-ng://` through the same
//! prober as the builders, `http(s)://` by fetching `nix-cache-info`
//! (status, StoreDir, priority), `file://` and local stores by reading them.
//! Every check has the same deadline as a builder's probe and they all run
//! at once, beside the builders' probe, so a dead substituter never delays
//! the builders' results.

mod cache_info;
pub mod from_builder;
mod http;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use cache_info::CacheInfo;

use crate::diagnostics::{Location, Origin};
use crate::machines::{Machine, MachinesText, Parser};
use crate::nixconf::NixConf;
use crate::probe::{self, ProbeSettings};

/// Nix's default `substituters` (for a store in `/nix/store`).
pub const DEFAULT: &str = "https://cache.nixos.org/";

/// One configured substituter and where it was set.
#[derive(Clone, Debug, PartialEq)]
pub struct Substituter {
    pub uri: String,
    /// The nix.conf line; `None` for Nix's default.
    pub location: Option<Location>,
}

/// The substituters Nix uses here: the last `substituters` line with the
/// `extra-substituters` after it appended, or Nix's default.
pub fn configured(conf: &NixConf) -> Vec<Substituter> {
    let mut value: Option<Vec<Substituter>> = None;
    for setting in &conf.settings {
        let words = || {
            setting.value.split_whitespace().map(|uri| Substituter {
                uri: uri.to_string(),
                location: Some(setting.location.clone()),
            })
        };
        match setting.name.as_str() {
            "substituters" => value = Some(words().collect()),
            "extra-substituters" => value.get_or_insert_with(default_list).extend(words()),
            _ => {}
        }
    }
    let mut list = value.unwrap_or_else(default_list);
    // Nix uses each once.
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.uri.clone()));
    list
}

fn default_list() -> Vec<Substituter> {
    vec![Substituter {
        uri: DEFAULT.into(),
        location: None,
    }]
}

/// A substituter's check. Status names are a stable interface: `up`, the
/// builders' probe statuses for SSH stores (`hostkey`, `auth`, `timeout`,
/// …), and `unreachable`, `http-error`, `wrong-store-dir`,
/// `bad-cache-info`, `unsupported`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubstituterCheck {
    pub uri: String,
    pub status: &'static str,
    pub reason: Option<String>,
    #[serde(skip)]
    pub elapsed: Duration,
    /// The cache's own `Priority` (lower is tried first), when it says.
    #[serde(skip)]
    pub priority: Option<u32>,
}

impl SubstituterCheck {
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }
}

/// Check every substituter at once, each within `settings.timeout`; SSH
/// ones through the prober with `settings` (the builders'). Results in
/// the order given; `stop` ends it early (`None`), SSH sessions closed.
pub async fn check_all(
    substituters: &[Substituter],
    settings: &ProbeSettings,
    store_dir: &str,
    stop: impl std::future::Future<Output = ()>,
) -> Option<Vec<SubstituterCheck>> {
    let timeout = settings.timeout;
    let ssh: Vec<usize> = (0..substituters.len())
        .filter(|&i| is_ssh(&substituters[i].uri))
        .collect();
    let machines: Vec<Option<Machine>> = ssh.iter().map(|&i| machine(&substituters[i])).collect();
    let probed: Vec<Machine> = machines.iter().flatten().cloned().collect();
    let mut probe_settings = settings.clone();
    probe_settings.list_builds = false;
    let started = Instant::now();
    // One stop for both halves: the probe closes its sessions on it.
    let stop = futures_util::FutureExt::shared(Box::pin(stop));
    let probes = probe::probe_once(&probed, probe_settings, |_| {}, stop.clone());
    let others = futures_util::future::join_all(
        substituters
            .iter()
            .filter(|s| !is_ssh(&s.uri))
            .map(|s| check_one(&s.uri, store_dir, timeout)),
    );
    let others = async {
        tokio::select! {
            others = others => Some(others),
            () = stop => None,
        }
    };
    let (reports, others) = tokio::join!(probes, others);
    let ssh_elapsed = started.elapsed();
    let mut reports = reports.ok()?.into_iter();
    let mut ssh_results = machines.into_iter().map(|m| match m {
        None => SubstituterCheck {
            uri: String::new(),
            status: "unsupported",
            reason: Some("not a valid SSH store URI".into()),
            elapsed: Duration::ZERO,
            priority: None,
        },
        Some(_) => {
            let report = reports.next();
            SubstituterCheck {
                uri: String::new(),
                status: report.as_ref().map_or("error", |r| r.status.name()),
                reason: report.and_then(|r| r.reason),
                elapsed: ssh_elapsed,
                priority: None,
            }
        }
    });
    let mut others = others?.into_iter();
    let checks = substituters
        .iter()
        .map(|s| {
            let mut result = if is_ssh(&s.uri) {
                ssh_results.next()
            } else {
                others.next()
            }
            .expect("one result per substituter");
            result.uri = s.uri.clone();
            result
        })
        .collect();
    Some(checks)
}

fn is_ssh(uri: &str) -> bool {
    uri.starts_with("ssh://") || uri.starts_with("ssh-ng://")
}

/// An SSH substituter as a machine the prober can reach (its URI alone,
/// as a machines line with every other column unset).
fn machine(substituter: &Substituter) -> Option<Machine> {
    let origin = substituter
        .location
        .as_ref()
        .map_or(Origin::BuildersFlag, |l| l.origin.clone());
    let mut parser = Parser::new(vec![crate::system::native()]);
    parser.parse_text(&MachinesText::whole(&substituter.uri, origin));
    parser.finish().machines.into_iter().next()
}

/// An HTTP, file or local substituter, within `timeout`.
async fn check_one(uri: &str, store_dir: &str, timeout: Duration) -> SubstituterCheck {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(timeout, reach(uri, store_dir)).await {
        // The URI's own `?priority=` wins over the cache's, as in Nix.
        Ok(outcome) => Outcome {
            priority: uri_priority(uri).or(outcome.priority),
            ..outcome
        },
        Err(_) => Outcome::failed(
            "timeout",
            format!("no answer within {}s", timeout.as_secs_f64()),
        ),
    };
    SubstituterCheck {
        uri: uri.to_string(),
        status: outcome.status,
        reason: outcome.reason,
        elapsed: started.elapsed(),
        priority: outcome.priority,
    }
}

/// `?priority=N` in a substituter's URI.
fn uri_priority(uri: &str) -> Option<u32> {
    let url = url::Url::parse(uri).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "priority")
        .and_then(|(_, v)| v.parse().ok())
}

struct Outcome {
    status: &'static str,
    reason: Option<String>,
    priority: Option<u32>,
}

impl Outcome {
    fn failed(status: &'static str, reason: impl Into<String>) -> Outcome {
        Outcome {
            status,
            reason: Some(reason.into()),
            priority: None,
        }
    }

    /// Judge a `nix-cache-info`'s text.
    fn of_cache_info(text: &[u8], store_dir: &str) -> Outcome {
        let text = String::from_utf8_lossy(text);
        match CacheInfo::parse(&text) {
            Err(e) => Outcome::failed("bad-cache-info", format!("nix-cache-info: {e}")),
            Ok(info) => match info.mismatch(store_dir) {
                Some(why) => Outcome {
                    status: "wrong-store-dir",
                    reason: Some(why),
                    priority: info.priority,
                },
                None => Outcome {
                    status: "up",
                    reason: None,
                    priority: info.priority,
                },
            },
        }
    }
}

async fn reach(uri: &str, store_dir: &str) -> Outcome {
    if uri.starts_with('/') {
        return local_store(Path::new(uri.split('?').next().unwrap_or(uri)));
    }
    let url = match url::Url::parse(uri) {
        Ok(url) => url,
        Err(e) => return Outcome::failed("unsupported", format!("not a store URI: {e}")),
    };
    match url.scheme() {
        "http" | "https" => {
            let mut info = url.clone();
            info.set_query(None);
            info.set_fragment(None);
            let path = format!("{}/nix-cache-info", url.path().trim_end_matches('/'));
            info.set_path(&path);
            match http::get(&info).await {
                Err(e) => Outcome::failed("unreachable", e),
                Ok(fetched) if fetched.status.is_success() => {
                    Outcome::of_cache_info(&fetched.body, store_dir)
                }
                Ok(fetched) => Outcome::failed(
                    "http-error",
                    format!("GET {info} answered {}", fetched.status),
                ),
            }
        }
        "file" => {
            let path = Path::new(url.path()).join("nix-cache-info");
            match read_bounded(&path).await {
                Ok(text) => Outcome::of_cache_info(&text, store_dir),
                Err(e) => Outcome::failed("unreachable", format!("{}: {e}", path.display())),
            }
        }
        "local" => local_store(Path::new(
            url.query_pairs()
                .find(|(k, _)| k == "root")
                .map_or("/".into(), |(_, v)| v.into_owned())
                .as_str(),
        )),
        other => Outcome::failed(
            "unsupported",
            format!("{other}:// substituters are not checked by rbtop"),
        ),
    }
}

/// A local store rooted at `root`: usable when its store directory exists.
fn local_store(root: &Path) -> Outcome {
    let store = root.join(crate::probe::route::STORE_DIR.trim_start_matches('/'));
    if store.is_dir() {
        Outcome {
            status: "up",
            reason: None,
            priority: None,
        }
    } else {
        Outcome::failed(
            "unreachable",
            format!("{} is not a directory", store.display()),
        )
    }
}

/// At most [`http::MAX_BODY`] bytes of a file.
async fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut out = Vec::new();
    file.take(http::MAX_BODY as u64)
        .read_to_end(&mut out)
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nixconf::NixConfEnv;

    fn conf(text: &str) -> NixConf {
        let empty = tempfile::tempdir().unwrap();
        let dir = empty.path().to_string_lossy().into_owned();
        let text = text.to_string();
        NixConf::load(&NixConfEnv::from_vars(|name| match name {
            "NIX_CONF_DIR" => Some(dir.clone()),
            "NIX_USER_CONF_FILES" => Some(String::new()),
            "NIX_CONFIG" => Some(text.clone()),
            _ => None,
        }))
    }

    fn uris(conf: &NixConf) -> Vec<String> {
        configured(conf).into_iter().map(|s| s.uri).collect()
    }

    #[test]
    fn substituters_resolve_as_nix_resolves_them() {
        assert_eq!(uris(&conf("")), [DEFAULT], "Nix's default");
        assert_eq!(
            uris(&conf("extra-substituters = ssh://cache")),
            [DEFAULT, "ssh://cache"],
            "extra- appends to the default"
        );
        assert_eq!(
            uris(&conf(
                "substituters = http://a\nextra-substituters = file:///b http://a\nsubstituters = ssh://c\nextra-substituters = ssh-ng://d"
            )),
            ["ssh://c", "ssh-ng://d"],
            "a later substituters line starts over; each once"
        );
        let located = configured(&conf("substituters = http://a"));
        assert_eq!(
            located[0].location.as_ref().unwrap().to_string(),
            "NIX_CONFIG:1"
        );
        assert!(uris(&conf("substituters =")).is_empty(), "set empty: none");
    }
}
