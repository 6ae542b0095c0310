//! The local Nix system type (`x86_64-linux`, ...), the default for an unset
//! systems column.

use crate::nixconf::NixConf;

/// What Nix was built for on this machine, from the same CPU/OS naming Nix uses.
pub(crate) fn native() -> String {
    let cpu = match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    format!("{cpu}-{os}")
}

/// nix.conf's `system` if set, else the native system.
pub(crate) fn local(conf: &NixConf) -> String {
    conf.get("system")
        .map(|s| s.value.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_system_has_nix_shape() {
        let sys = native();
        let (cpu, os) = sys.split_once('-').expect("cpu-os");
        assert!(!cpu.is_empty() && !os.is_empty());
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            assert_eq!(sys, "x86_64-linux");
        }
    }
}
