//! Which file system a path lives on, as `/proc/self/mountinfo` says: on
//! btrfs (and overlayfs) `stat`'s `st_dev` is not the superblock's device
//! that `/proc/locks` prints, while mountinfo's is.

use std::fs;
use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The device number of the file system mounted where `path` lives, as
/// `/proc/self/mountinfo` (and `/proc/locks`) give it.
pub(super) fn mount_device_of(path: &Path) -> Option<(u32, u32)> {
    let path = fs::canonicalize(path).ok()?;
    let text = fs::read_to_string(MOUNTINFO).ok()?;
    mount_device_in(&text, &path)
}

/// The device of the last-mounted of the deepest mount points containing
/// `path`, in mountinfo text.
fn mount_device_in(mountinfo: &str, path: &Path) -> Option<(u32, u32)> {
    let mut best: Option<(usize, (u32, u32))> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(device), Some(mount_point)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Some((major, minor)) = device.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point.components().count();
        if best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, (major, minor)));
        }
    }
    best.map(|(_, device)| device)
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_deepest_mount_wins() {
        let text = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:45 / /nix rw,relatime - btrfs /dev/vdb rw,subvol=/nix
41 27 0:46 / /nix\\040store rw - tmpfs tmpfs rw
42 40 0:47 / /nix/var rw - btrfs /dev/vdb rw
43 40 0:48 / /nix/var rw - btrfs /dev/vdb rw
";
        let dev = |p: &str| mount_device_in(text, Path::new(p));
        assert_eq!(dev("/nix/var/nix/current-load"), Some((0, 48)));
        assert_eq!(dev("/nix/store/x"), Some((0, 45)));
        assert_eq!(dev("/nix store/x"), Some((0, 46)));
        assert_eq!(dev("/etc"), Some((254, 0)));
        assert_eq!(unescape_mountinfo("a\\040b\\134c\\9"), "a b\\c\\9");
    }
}
