//! Who a slot is for: the process behind the build hook that holds it
//! (the hook's parent: `nix-build`, `nix build`, or a `nix-daemon` worker),
//! by local user and command line, read from `/proc`.

use std::path::Path;

/// The process a build hook works for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    pub pid: u32,
    /// Its real user, by name when `/etc/passwd` has it, else `uid N`.
    pub user: String,
    /// Its command line, words joined by spaces.
    pub command: String,
}

/// The parent of `hook_pid`, or `None` when either is gone (or `hook_pid`
/// is 0: a hook in another pid namespace).
pub fn behind(hook_pid: u32) -> Option<Behind> {
    if hook_pid == 0 {
        return None;
    }
    let proc = Path::new("/proc");
    let stat = std::fs::read_to_string(proc.join(hook_pid.to_string()).join("stat")).ok()?;
    let ppid: u32 = crate::proc_stat::fields_after_name(&stat)?
        .get(1)?
        .parse()
        .ok()?;
    let dir = proc.join(ppid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let uid = crate::jobs::elsewhere::real_uid(&status)?;
    let cmdline =
        crate::bounds::read_regular_file(&dir.join("cmdline"), crate::bounds::PROC_FILE).ok()?;
    let command = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Behind {
        pid: ppid,
        user: user_of(uid),
        command,
    })
}

/// A uid's name in `/etc/passwd`, else `uid N`.
pub fn user_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    user_name(&passwd, uid)
}

fn user_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id: u32 = fields.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1000), "alice");
        assert_eq!(user_name(passwd, 7), "uid 7");
    }

    #[test]
    fn the_parent_of_a_real_process_by_user_and_command() {
        // sh runs sleep as its child (the `; :` keeps sh from exec'ing it).
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .spawn()
            .unwrap();
        let parent = sh.id();
        let children = format!("/proc/{parent}/task/{parent}/children");
        let started = std::time::Instant::now();
        let sleep_pid = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                break pid.parse::<u32>().unwrap();
            }
            assert!(started.elapsed().as_secs() < 10, "sh started no child");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let found = behind(sleep_pid);
        let _ = sh.kill();
        let _ = sh.wait();
        let found = found.expect("sleep has a parent");
        assert_eq!(found.pid, parent);
        assert_eq!(found.command, "sh -c sleep 30; :");
        let me = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid: u32 = me
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        assert_eq!(found.user, user_name(&passwd, uid));
        assert_eq!(behind(0), None);
    }
}
