//! Every script rbtop runs on a builder, each a real file under
//! `src/remote/scripts/` (checked by `shellcheck -s sh` in
//! `tests/run-all.sh`), loaded here and nowhere else.
//!
//! A script runs as `sh -c TEXT NAME ARGS...`: its text is one word, its
//! arguments are words of their own (quoted for the remote shell by the
//! `openssh` crate), so nothing a machines file or a builder says is ever
//! spliced into a script's text. `NAME` is the script's `$0`, which is what
//! its process shows as on the builder (`ps`, and the fleet tests' look for
//! what a session left behind).

use std::time::Duration;

use crate::ssh::HostSession;

/// One script run on builders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Script {
    /// Its `$0` on the builder.
    pub name: &'static str,
    /// Its file under `src/remote/scripts/`.
    pub file: &'static str,
    pub text: &'static str,
}

macro_rules! script {
    ($file:literal, $name:literal) => {
        Script {
            name: $name,
            file: $file,
            text: include_str!(concat!("scripts/", $file)),
        }
    };
}

/// The facts loop ([`crate::probe::facts`]):
/// `rbtop-facts STORE_DIR [NIX_STORE_WORDS...]`, one report per request line;
/// the words (a `remote-program`, possibly several) are asked `--version`.
/// Inside the loop, a Linux report stays fork-free: only built-ins and
/// parameter expansions (the tests count the loop's forks).
pub(crate) const FACTS: Script = script!("facts.sh", "rbtop-facts");
/// The builder check's finder ([`super::find`]): `rbtop-find-build -F|-E ENTRY...`.
pub(crate) const FIND_BUILD: Script = script!("find_build.sh", "rbtop-find-build");
/// The one kill ([`super::kill`]), for `K` and the builder check:
/// `rbtop-kill KIND ID START...`.
pub(crate) const KILL: Script = script!("kill.sh", "rbtop-kill");
/// A builder's own reach of its substituters
/// ([`crate::substituters::from_builder`]):
/// `rbtop-substituters NONCE LIMIT MAX STORE_DIR NIX_WORDS...`.
pub(crate) const SUBSTITUTERS: Script = script!("substituters.sh", "rbtop-substituters");

/// Every script, so that none escapes the list (a test checks the
/// directory against it).
#[cfg(test)]
pub(crate) const ALL: [Script; 4] = [FACTS, FIND_BUILD, KILL, SUBSTITUTERS];

/// Why a script run on a builder gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the builder did not answer in time")]
    TimedOut,
    #[error("{}", crate::bounds::SCRIPT_ANSWER.exceeded())]
    TooLong,
    #[error("{0}")]
    Ssh(#[from] openssh::Error),
}

impl Script {
    /// The words after `sh`: `-c TEXT NAME ARGS...`.
    pub(crate) fn sh_args<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Vec<String> {
        ["-c", self.text, self.name]
            .into_iter()
            .map(str::to_string)
            .chain(args.into_iter().map(|a| a.as_ref().to_string()))
            .collect()
    }

    /// `sh -c TEXT NAME ARGS...`, every word of it.
    pub(crate) fn words<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Vec<String> {
        let mut words = vec!["sh".to_string()];
        words.extend(self.sh_args(args));
        words
    }

    /// Run it once on the builder of `session` and take what it printed,
    /// within `limit` and [`SCRIPT_ANSWER`](crate::bounds::SCRIPT_ANSWER)
    /// (past either the command is dropped, which ends its channel). Its
    /// stdin stays open until then: a script that runs for long watches it
    /// and stops when it ends (sshd signals nothing to a session without a
    /// terminal).
    pub(crate) async fn output<S: AsRef<str>>(
        &self,
        session: &HostSession,
        args: impl IntoIterator<Item = S>,
        limit: Duration,
    ) -> Result<String, RunError> {
        use tokio::io::AsyncReadExt;
        let mut command = session.session().command("sh");
        command
            .args(self.sh_args(args))
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::null());
        let bound = crate::bounds::SCRIPT_ANSWER.limit;
        let run = async {
            let mut child = command.spawn().await?;
            // Held, never written, until the answer is read.
            let _stdin = child.stdin().take();
            let mut out = Vec::new();
            if let Some(stdout) = child.stdout().take() {
                stdout
                    .take(bound as u64 + 1)
                    .read_to_end(&mut out)
                    .await
                    .map_err(openssh::Error::ChildIo)?;
            }
            if out.len() > bound {
                return Err(RunError::TooLong);
            }
            child.wait().await?;
            Ok(out)
        };
        let out = tokio::time::timeout(limit, run)
            .await
            .map_err(|_| RunError::TimedOut)??;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Debian's `/bin/sh` is dash, the shell most builders run these with;
    /// elsewhere the test takes what `/bin/sh` is.
    pub(crate) fn dash() -> &'static str {
        ["/bin/dash", "/usr/bin/dash", "/bin/sh"]
            .into_iter()
            .find(|s| Path::new(s).exists())
            .expect("a /bin/sh")
    }

    /// Every file under `src/remote/scripts/` is one of [`ALL`], and each
    /// of [`ALL`] is there: no script is run that shellcheck does not read,
    /// nor read that is not run.
    #[test]
    fn every_script_file_is_loaded_and_every_loaded_script_is_a_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/remote/scripts");
        let files: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let loaded: BTreeSet<String> = ALL.iter().map(|s| s.file.to_string()).collect();
        assert_eq!(files, loaded, "{} against script::ALL", dir.display());
        for script in ALL {
            let text = std::fs::read_to_string(dir.join(script.file)).unwrap();
            assert_eq!(text, script.text, "{}", script.file);
            assert!(script.file.ends_with(".sh"), "{}", script.file);
        }
        let names: BTreeSet<&str> = ALL.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), ALL.len(), "one $0 per script: {names:?}");
    }

    #[test]
    fn arguments_are_words_after_the_name_never_in_the_text() {
        let words = KILL.words(["group", "12; rm -rf /", "5"]);
        assert_eq!(words[..2], ["sh", "-c"]);
        assert_eq!(words[2], KILL.text);
        assert_eq!(words[3..], ["rbtop-kill", "group", "12; rm -rf /", "5"]);
        assert!(!KILL.text.contains("rm -rf"));
    }
}
