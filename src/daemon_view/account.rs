//! The account this process runs as: its uid, name and home (from the
//! passwd database, as ssh looks them up).

use std::ffi::CStr;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub uid: u32,
    /// The login name, or `uid N` when the passwd database has none.
    pub name: String,
    #[serde(skip)]
    pub home: Option<PathBuf>,
}

impl Account {
    pub fn current() -> Account {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        Account::of_uid(uid)
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    fn of_uid(uid: u32) -> Account {
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is to memory owned here and sized as given;
        // the strings read are in `buffer`, alive until the end.
        let status = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if status != 0 || found.is_null() {
            return Account {
                uid,
                name: format!("uid {uid}"),
                home: None,
            };
        }
        // SAFETY: getpwuid_r succeeded: both are NUL-terminated in `buffer`.
        let (name, home) = unsafe {
            (
                CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned(),
                CStr::from_ptr(entry.pw_dir).to_string_lossy().into_owned(),
            )
        };
        Account {
            uid,
            name,
            home: Some(PathBuf::from(home)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_from_the_passwd_database() {
        let root = Account::of_uid(0);
        assert_eq!(root.name, "root");
        assert!(root.is_root());
        assert!(root.home.is_some());
    }

    #[test]
    fn an_unknown_uid_is_said_as_a_number() {
        let nobody = Account::of_uid(3_999_999_999);
        assert_eq!(nobody.name, "uid 3999999999");
        assert!(!nobody.is_root());
    }
}
