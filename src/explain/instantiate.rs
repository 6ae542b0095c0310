//! A Nix expression file (`rbtop explain FILE.nix [ATTR]`) turned into the
//! `.drv` it describes, with the local `nix-instantiate`, so the explainer
//! reads the derivation Nix would build. Arguments go as argv words.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `path` names a Nix expression rather than a derivation.
pub fn is_expression(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "nix") || path.is_dir()
}

/// What to run by hand, said when rbtop cannot run it.
pub fn command_line(file: &Path, attr: Option<&str>) -> String {
    let mut line = format!(
        "nix-instantiate {}",
        shell_quote(&file.display().to_string())
    );
    if let Some(attr) = attr {
        line.push_str(&format!(" -A {}", shell_quote(attr)));
    }
    line
}

fn shell_quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+:=@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Instantiate `file` (its `attr`, when given) with `program` (normally
/// `nix-instantiate`); the one `.drv` it gives, or why there is none,
/// saying what to run instead.
pub fn instantiate(program: &str, file: &Path, attr: Option<&str>) -> Result<PathBuf, String> {
    let mut command = Command::new(program);
    command.arg(file);
    if let Some(attr) = attr {
        command.args(["-A", attr]);
    }
    let by_hand = command_line(file, attr);
    let output = command.output().map_err(|e| {
        format!(
            "{} is a Nix expression, not a .drv; running {program} failed ({e}): \
             run `{by_hand}` where Nix is installed and explain the .drv it prints",
            file.display()
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(format!("`{by_hand}` failed ({}): {said}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let drvs: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(".drv"))
        .collect();
    match drvs[..] {
        [one] => Ok(PathBuf::from(one)),
        [] => Err(format!("`{by_hand}` printed no .drv path")),
        _ => Err(format!(
            "`{by_hand}` gives {} derivations; name one with ATTR (rbtop explain {} ATTR)",
            drvs.len(),
            file.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for nix-instantiate that prints its arguments' answer:
    /// a real program run with real argv, no Nix needed.
    fn script(dir: &Path, body: &str) -> String {
        let path = dir.join("fake-instantiate");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn one_drv_is_the_answer_and_the_attribute_is_an_argv_word() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            r#"[ "$2" = "-A" ] && [ "$3" = "a b" ] && echo /nix/store/x-a.drv"#,
        );
        let file = Path::new("/tmp/d.nix");
        assert_eq!(
            instantiate(&program, file, Some("a b")).unwrap(),
            PathBuf::from("/nix/store/x-a.drv")
        );
        let many = script(
            dir.path(),
            "echo /nix/store/x-a.drv; echo /nix/store/y-b.drv",
        );
        let e = instantiate(&many, file, None).unwrap_err();
        assert!(e.contains("gives 2 derivations; name one with ATTR"), "{e}");
        let failing = script(dir.path(), "echo 'error: attribute x missing' >&2; exit 1");
        let e = instantiate(&failing, file, Some("x")).unwrap_err();
        assert!(
            e.starts_with("`nix-instantiate /tmp/d.nix -A x` failed")
                && e.ends_with("error: attribute x missing"),
            "{e}"
        );
    }

    #[test]
    fn without_nix_instantiate_it_says_what_to_run() {
        let e = instantiate(
            "/nonexistent/nix-instantiate",
            Path::new("my file.nix"),
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("run `nix-instantiate 'my file.nix'` where Nix is installed"),
            "{e}"
        );
    }
}
