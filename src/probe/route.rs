//! How a machine's store is reached, decided once from its URI, and the
//! exact commands run for it.

use std::path::PathBuf;

use super::links::StoreProtocol;
use super::report::Status;
use crate::machines::Machine;
use crate::ssh::SshTarget;

/// Where the facts script looks for free space.
pub(crate) const STORE_DIR: &str = "/nix/store";

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Route {
    /// Over SSH: `ssh://host` and `ssh-ng://host`.
    Ssh {
        target: SshTarget,
        store_command: Vec<String>,
        protocol: StoreProtocol,
    },
    /// A local child, as Nix does for `ssh://localhost` and `local` stores.
    LocalProcess {
        store_command: Vec<String>,
        protocol: StoreProtocol,
    },
    /// The local daemon's socket: `daemon`, `unix://path`.
    Socket { path: PathBuf },
    /// A store rbtop cannot or must not probe: a kind Nix cannot build on, or
    /// an unusable pinned key (never connected to without its pin).
    Unsupported { status: Status, reason: String },
}

impl Route {
    pub(crate) fn of(machine: &Machine) -> Route {
        let store = &machine.store;
        match store.protocol.as_str() {
            "ssh" | "ssh-ng" => {
                let protocol = if store.protocol == "ssh" {
                    StoreProtocol::Serve
                } else {
                    StoreProtocol::Worker
                };
                let store_command = remote_command(machine, protocol);
                // Nix runs the command without ssh when the authority is exactly `localhost`.
                if store.host.as_deref() == Some("localhost")
                    && store.user.is_none()
                    && store.port.is_none()
                {
                    return Route::LocalProcess {
                        store_command,
                        protocol,
                    };
                }
                match SshTarget::of(machine) {
                    Ok(Some(target)) => Route::Ssh {
                        target,
                        store_command,
                        protocol,
                    },
                    Ok(None) => Route::Unsupported {
                        status: Status::Error,
                        reason: format!("'{}' names no host", store.uri),
                    },
                    Err(reason) => Route::Unsupported {
                        status: Status::Hostkey,
                        reason: format!("{reason}; not connecting without it"),
                    },
                }
            }
            // `auto` picks the daemon or the local store as Nix would, so let Nix pick.
            "local" | "auto" => Route::LocalProcess {
                store_command: words(&["nix-store", "--serve", "--write", "--store", &store.uri]),
                protocol: StoreProtocol::Serve,
            },
            "daemon" => Route::Socket {
                path: daemon_socket_path(),
            },
            "unix" => {
                let path = store
                    .uri
                    .trim_start_matches("unix://")
                    .split('?')
                    .next()
                    .unwrap_or_default();
                if path.is_empty() {
                    Route::Socket {
                        path: daemon_socket_path(),
                    }
                } else {
                    Route::Socket {
                        path: PathBuf::from(path),
                    }
                }
            }
            other => Route::Unsupported {
                status: Status::Error,
                reason: format!(
                    "'{other}://' stores cannot run builds; rbtop probes ssh://, ssh-ng://, \
                     local, daemon, auto and unix:// stores"
                ),
            },
        }
    }

    #[cfg(test)]
    pub(crate) fn store_command(&self) -> Option<&[String]> {
        match self {
            Route::Ssh { store_command, .. } | Route::LocalProcess { store_command, .. } => {
                Some(store_command)
            }
            _ => None,
        }
    }

    /// `sh -c FACTS rbtop-facts <store dir> [nix-store words...]` ([`crate::remote::script::FACTS`]).
    pub(crate) fn facts_command(&self) -> Vec<String> {
        let mut command = crate::remote::script::FACTS.words([STORE_DIR]);
        // Only the serve protocol lacks a version: ask its program for one.
        if let Route::Ssh {
            store_command,
            protocol: StoreProtocol::Serve,
            ..
        }
        | Route::LocalProcess {
            store_command,
            protocol: StoreProtocol::Serve,
        } = self
        {
            command.extend(program_words(store_command).iter().cloned());
        }
        command
    }
}

impl Route {
    /// The cold probe's one session over SSH: `sh -c FACTS rbtop-facts <store
    /// dir> --then-exec NONCE N LIST <store command...>`, one report between
    /// `begin NONCE` and `end NONCE`, then the store command on the same
    /// channel (N: how many of its words are the program asked `--version`,
    /// 0 for the worker protocol, whose handshake says it; LIST: `builds`
    /// adds the builds listing, else `-`). `None` off SSH.
    /// `daemon`: `nix-daemon --stdio` words for the report's `daemon_hello=`
    /// (TRUSTED over ssh://, see [`super::trust`]), or none.
    pub(crate) fn first_command(
        &self,
        nonce: &str,
        list_builds: bool,
        daemon: Option<&[String]>,
    ) -> Option<Vec<String>> {
        let Route::Ssh {
            store_command,
            protocol,
            ..
        } = self
        else {
            return None;
        };
        let program_words = match protocol {
            StoreProtocol::Serve => program_words(store_command).len(),
            StoreProtocol::Worker => 0,
        };
        let program_words = program_words.to_string();
        let daemon = daemon.unwrap_or_default();
        let (hello, limit, daemon_words) = if daemon.is_empty() {
            ("-".to_string(), "0".to_string(), "0".to_string())
        } else {
            (
                super::trust::hello_format(),
                crate::bounds::DAEMON_HELLO.limit.to_string(),
                daemon.len().to_string(),
            )
        };
        let mut command = crate::remote::script::FACTS.words([
            STORE_DIR,
            "--then-exec",
            nonce,
            program_words.as_str(),
            if list_builds {
                super::facts::REQUEST_BUILDS
            } else {
                "-"
            },
            hello.as_str(),
            limit.as_str(),
            daemon_words.as_str(),
        ]);
        command.extend(daemon.iter().cloned());
        command.extend(store_command.iter().cloned());
        Some(command)
    }
}

/// The remote command as Nix builds it: `remote-program` (default
/// `nix-store` / `nix-daemon`, a word list as in Nix ≥ 2.19), the protocol's
/// flags, and `--store <remote-store>` when set.
fn remote_command(machine: &Machine, protocol: StoreProtocol) -> Vec<String> {
    let params = &machine.store.params;
    let mut command: Vec<String> = params
        .get("remote-program")
        .map(|p| p.split_whitespace().map(str::to_string).collect())
        .filter(|w: &Vec<String>| !w.is_empty())
        .unwrap_or_else(|| {
            vec![match protocol {
                StoreProtocol::Serve => "nix-store".to_string(),
                StoreProtocol::Worker => "nix-daemon".to_string(),
            }]
        });
    match protocol {
        StoreProtocol::Serve => command.extend(words(&["--serve", "--write"])),
        StoreProtocol::Worker => command.push("--stdio".to_string()),
    }
    if let Some(store) = params.get("remote-store").filter(|s| !s.is_empty()) {
        command.extend(words(&["--store", store]));
    }
    command
}

/// The program part of a store command: the words before its first flag
/// (`env nix-store` of `env nix-store --serve --write`).
pub(crate) fn program_words(command: &[String]) -> &[String] {
    let end = command
        .iter()
        .position(|w| w.starts_with("--"))
        .unwrap_or(command.len());
    &command[..end.max(1).min(command.len())]
}

/// `NIX_DAEMON_SOCKET_PATH`, else `$NIX_STATE_DIR/daemon-socket/socket`.
fn daemon_socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os("NIX_DAEMON_SOCKET_PATH") {
        return PathBuf::from(path);
    }
    let state = std::env::var_os("NIX_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/nix/var/nix"));
    state.join("daemon-socket").join("socket")
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::testing::machine;

    #[test]
    fn ssh_uses_the_serve_protocol_and_ssh_ng_the_daemon() {
        match Route::of(&machine("ssh://nix@b1:2222")) {
            Route::Ssh {
                target,
                store_command,
                protocol,
            } => {
                assert_eq!(protocol, StoreProtocol::Serve);
                assert_eq!(store_command, ["nix-store", "--serve", "--write"]);
                assert_eq!((target.host.as_str(), target.port), ("b1", Some(2222)));
                assert_eq!(target.user.as_deref(), Some("nix"));
            }
            other => panic!("{other:?}"),
        }
        let route = Route::of(&machine("ssh-ng://b2"));
        assert_eq!(route.store_command().unwrap(), ["nix-daemon", "--stdio"]);
    }

    #[test]
    fn remote_program_and_remote_store_are_honoured() {
        let route = Route::of(&machine(
            "ssh-ng://b1?remote-program=/opt/nix/bin/nix-daemon&remote-store=/mnt%20x",
        ));
        assert_eq!(
            route.store_command().unwrap(),
            ["/opt/nix/bin/nix-daemon", "--stdio", "--store", "/mnt x"]
        );
        let route = Route::of(&machine("ssh://b1?remote-program=env%20/opt/bin/nix-store"));
        assert_eq!(
            &route.facts_command()[4..],
            ["/nix/store", "env", "/opt/bin/nix-store"],
            "the facts ask this program its version"
        );
        assert_eq!(Route::of(&machine("ssh-ng://b1")).facts_command().len(), 5);
    }

    #[test]
    fn an_unusable_pin_is_a_hostkey_failure_not_a_connection_without_it() {
        match Route::of(&machine("ssh://b1 x86_64-linux - 1 1 - - aGVsbG8gd29ybGQ=")) {
            Route::Unsupported { status, reason } => {
                assert_eq!(status, Status::Hostkey);
                assert!(reason.contains("not connecting"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_kinds_are_probed_locally_not_skipped() {
        assert!(matches!(
            Route::of(&machine("ssh://localhost")),
            Route::LocalProcess {
                protocol: StoreProtocol::Serve,
                ..
            }
        ));
        assert!(matches!(
            Route::of(&machine("ssh://root@localhost")),
            Route::Ssh { .. }
        ));
        assert_eq!(
            Route::of(&machine("local")).store_command().unwrap(),
            ["nix-store", "--serve", "--write", "--store", "local"]
        );
        assert_eq!(
            Route::of(&machine("unix:///run/nix.sock")),
            Route::Socket {
                path: "/run/nix.sock".into()
            }
        );
        assert!(matches!(
            Route::of(&machine("daemon")),
            Route::Socket { .. }
        ));
        match Route::of(&machine("https://cache.example.org")) {
            Route::Unsupported { status, reason } => {
                assert_eq!(status, Status::Error);
                assert!(reason.contains("https"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
