//! This machine's own build capacity, from nix.conf with Nix's defaults:
//! what the empty dashboard shows so that it still says something useful.

use crate::nixconf::NixConf;
use crate::system;

/// One setting's value and whether nix.conf set it (else Nix's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valued<T> {
    pub value: T,
    /// `Some("file:line")` when nix.conf set it.
    pub set_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCapacity {
    pub system: Valued<String>,
    pub extra_platforms: Valued<Vec<String>>,
    pub system_features: Valued<Vec<String>>,
    /// As written: a number or `auto`.
    pub max_jobs: Valued<String>,
    /// CPUs here, what `max-jobs = auto` means.
    pub cpus: usize,
}

impl LocalCapacity {
    pub fn of(conf: &NixConf) -> LocalCapacity {
        let system = system::local(conf);
        let set_at = |name: &str| {
            conf.settings
                .iter()
                .rev()
                .find(|s| s.name == name || s.name == format!("extra-{name}"))
                .map(|s| s.location.to_string())
        };
        let list = |name: &str, default: Vec<String>| {
            let value = match (conf.get(name), conf.list(name)) {
                (Some(_), Some(set)) => set,
                // Only `extra-` lines: they add to the default.
                (None, Some(extra)) => default.into_iter().chain(extra).collect(),
                (_, None) => default,
            };
            Valued {
                value,
                set_at: set_at(name),
            }
        };
        LocalCapacity {
            extra_platforms: list("extra-platforms", default_extra_platforms(&system)),
            system_features: list("system-features", default_system_features()),
            max_jobs: Valued {
                value: conf
                    .get("max-jobs")
                    .map_or_else(|| "1".to_string(), |s| s.value.clone()),
                set_at: conf.get("max-jobs").map(|s| s.location.to_string()),
            },
            system: Valued {
                value: system,
                set_at: conf.get("system").map(|s| s.location.to_string()),
            },
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Nix's default: a 64-bit x86 Linux also builds for 32-bit x86.
fn default_extra_platforms(system: &str) -> Vec<String> {
    if system == "x86_64-linux" {
        vec!["i686-linux".to_string()]
    } else {
        Vec::new()
    }
}

/// Nix's default features, with `kvm` when /dev/kvm is usable.
fn default_system_features() -> Vec<String> {
    let mut features: Vec<String> = ["benchmark", "big-parallel", "nixos-test"]
        .map(String::from)
        .to_vec();
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm {
        features.push("kvm".to_string());
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nixconf::NixConfEnv;

    fn conf(text: &str) -> NixConf {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nix.conf"), text).unwrap();
        let dir_path = dir.path().to_path_buf();
        let env = NixConfEnv::from_vars(|name| match name {
            "NIX_CONF_DIR" => Some(dir_path.display().to_string()),
            "NIX_USER_CONF_FILES" => Some(String::new()),
            _ => None,
        });
        NixConf::load(&env)
    }

    #[test]
    fn settings_from_nix_conf_are_shown_with_where_they_were_set() {
        let c = LocalCapacity::of(&conf(
            "system = aarch64-linux\nsystem-features = kvm gccarch-armv8-a\nmax-jobs = auto\n",
        ));
        assert_eq!(c.system.value, "aarch64-linux");
        assert!(c.system.set_at.as_deref().unwrap().ends_with("nix.conf:1"));
        assert_eq!(c.system_features.value, ["kvm", "gccarch-armv8-a"]);
        assert_eq!(c.max_jobs.value, "auto");
        assert!(c.max_jobs.set_at.is_some());
        assert_eq!(
            c.extra_platforms.value,
            Vec::<String>::new(),
            "no default off x86_64"
        );
        assert_eq!(c.extra_platforms.set_at, None);
    }

    #[test]
    fn defaults_apply_and_extra_lines_add_to_them() {
        let c = LocalCapacity::of(&conf(
            "system = x86_64-linux\nextra-system-features = cuda\n",
        ));
        assert_eq!(c.max_jobs.value, "1");
        assert_eq!(c.max_jobs.set_at, None);
        assert_eq!(c.extra_platforms.value, ["i686-linux"]);
        let features = &c.system_features.value;
        assert!(features.starts_with(&["benchmark".into(), "big-parallel".into()]));
        assert_eq!(features.last().map(String::as_str), Some("cuda"));
        assert!(c.system_features.set_at.is_some());
    }
}
