//! nix.conf resolution end to end, through the public library API: which
//! files are read and in what order, `include` / `!include`, `builders` /
//! `extra-builders`, the default `@$NIX_CONF_DIR/machines`, and the
//! locations (file:line:column) that machines and diagnostics point at.
//!
//! Every test builds its own `NixConfEnv` over a temporary directory, so the
//! real /etc/nix and the real HOME are never read.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use rbtop::diagnostics::{Diagnostic, Origin, Severity};
use rbtop::nixconf::{FileState, NixConf, NixConfEnv};
use rbtop::sources::SourceChoice;
use rbtop::sources::{Resolved, resolve};
use tempfile::TempDir;

// ---------------------------------------------------------------- helpers

/// A scratch tree: `<tmp>/etc` plays `$NIX_CONF_DIR`, `<tmp>/home` plays HOME.
struct Tree {
    dir: TempDir,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::create_dir_all(dir.path().join("home")).unwrap();
        Tree { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write `text` at `rel` (creating parent directories) and return its path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    /// `$NIX_CONF_DIR`.
    fn etc(&self) -> PathBuf {
        self.path("etc")
    }

    /// `$NIX_CONF_DIR/nix.conf`, as a display string.
    fn nix_conf(&self) -> String {
        show(&self.etc().join("nix.conf"))
    }

    /// No user files, no NIX_CONFIG.
    fn env(&self) -> NixConfEnv {
        NixConfEnv {
            conf_dir: self.etc(),
            user_files: Vec::new(),
            nix_config: None,
        }
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

fn resolve_nix_conf(env: &NixConfEnv) -> Resolved {
    resolve(&SourceChoice::NixConf, env, None)
}

fn uris(r: &Resolved) -> Vec<&str> {
    r.parsed.machines.iter().map(|m| m.uri()).collect()
}

fn machine_locations(r: &Resolved) -> Vec<String> {
    r.parsed
        .machines
        .iter()
        .map(|m| m.location.to_string())
        .collect()
}

fn errors(r: &Resolved) -> Vec<&Diagnostic> {
    r.parsed.errors().collect()
}

fn warnings(r: &Resolved) -> Vec<&Diagnostic> {
    r.parsed.warnings().collect()
}

/// Every diagnostic, rendered, for assertion messages.
fn dump(r: &Resolved) -> String {
    r.parsed
        .diagnostics
        .iter()
        .map(Diagnostic::render)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(name, "file:line")` of every setting, in application order.
fn setting_order(conf: &NixConf) -> Vec<(String, String)> {
    conf.settings
        .iter()
        .map(|s| (s.name.clone(), s.location.to_string()))
        .collect()
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env_from(map: &HashMap<String, String>) -> NixConfEnv {
    NixConfEnv::from_vars(|name| map.get(name).cloned())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const EXTRA_BUILDERS_WARNING: &str = "Nix does not know `extra-builders`";

// ------------------------------------------------ NixConfEnv::from_vars

#[test]
fn from_vars_with_nothing_set_uses_etc_nix_and_etc_xdg() {
    let env = env_from(&HashMap::new());
    assert_eq!(env.conf_dir, PathBuf::from("/etc/nix"));
    // No HOME and no XDG_CONFIG_HOME: only the XDG_CONFIG_DIRS default.
    assert_eq!(env.user_files, vec![PathBuf::from("/etc/xdg/nix/nix.conf")]);
    assert_eq!(env.nix_config, None);
}

#[test]
fn from_vars_defaults_the_config_home_to_home_dot_config() {
    let env = env_from(&vars(&[("HOME", "/home/op")]));
    assert_eq!(env.conf_dir, PathBuf::from("/etc/nix"));
    assert_eq!(
        env.user_files,
        vec![
            PathBuf::from("/home/op/.config/nix/nix.conf"),
            PathBuf::from("/etc/xdg/nix/nix.conf"),
        ]
    );
}

#[test]
fn from_vars_uses_the_xdg_variables_highest_priority_first() {
    let env = env_from(&vars(&[
        ("HOME", "/home/op"),
        ("XDG_CONFIG_HOME", "/cfg"),
        ("XDG_CONFIG_DIRS", "/xdg/a::/xdg/b"),
        ("NIX_CONF_DIR", "/opt/nix/etc"),
        ("NIX_CONFIG", "builders = ssh://env\nmax-jobs = 3"),
    ]));
    assert_eq!(env.conf_dir, PathBuf::from("/opt/nix/etc"));
    assert_eq!(
        env.user_files,
        vec![
            PathBuf::from("/cfg/nix/nix.conf"),
            PathBuf::from("/xdg/a/nix/nix.conf"),
            PathBuf::from("/xdg/b/nix/nix.conf"),
        ]
    );
    assert_eq!(
        env.nix_config.as_deref(),
        Some("builders = ssh://env\nmax-jobs = 3")
    );
}

#[test]
fn from_vars_with_empty_xdg_config_dirs_keeps_only_the_config_home() {
    let env = env_from(&vars(&[("HOME", "/h"), ("XDG_CONFIG_DIRS", "")]));
    assert_eq!(
        env.user_files,
        vec![PathBuf::from("/h/.config/nix/nix.conf")]
    );
}

#[test]
fn from_vars_nix_user_conf_files_replaces_the_xdg_lookup() {
    let env = env_from(&vars(&[
        ("HOME", "/home/op"),
        ("XDG_CONFIG_HOME", "/cfg"),
        ("XDG_CONFIG_DIRS", "/xdg"),
        ("NIX_USER_CONF_FILES", "/one.conf::/two/nix.conf:"),
    ]));
    // Empty items are skipped, order kept, XDG ignored entirely.
    assert_eq!(
        env.user_files,
        vec![PathBuf::from("/one.conf"), PathBuf::from("/two/nix.conf")]
    );
    assert_eq!(env.conf_dir, PathBuf::from("/etc/nix"));
}

#[test]
fn from_vars_empty_nix_user_conf_files_means_no_user_files() {
    let env = env_from(&vars(&[("HOME", "/home/op"), ("NIX_USER_CONF_FILES", "")]));
    assert!(env.user_files.is_empty(), "{:?}", env.user_files);
}

#[test]
fn from_vars_empty_nix_conf_dir_falls_back_to_etc_nix() {
    let env = env_from(&vars(&[("NIX_CONF_DIR", "")]));
    assert_eq!(env.conf_dir, PathBuf::from("/etc/nix"));
}

#[test]
fn from_vars_environment_is_applied_in_nix_order() {
    let t = Tree::new();
    let xdg_home = t.write(
        "home/.config/nix/nix.conf",
        "builders = ssh://config-home\n",
    );
    let xdg_a = t.write("xdg-a/nix/nix.conf", "builders = ssh://xdg-a\n");
    t.write("xdg-b/nix/nix.conf", "builders = ssh://xdg-b\n");
    t.write("etc/nix.conf", "builders = ssh://system\n");
    let dirs = format!("{}:{}", show(&t.path("xdg-a")), show(&t.path("xdg-b")));
    let mut map = vars(&[
        ("HOME", &show(&t.path("home"))),
        ("XDG_CONFIG_DIRS", &dirs),
        ("NIX_CONF_DIR", &show(&t.etc())),
    ]);

    // XDG_CONFIG_HOME beats every XDG_CONFIG_DIRS entry.
    let r = resolve_nix_conf(&env_from(&map));
    assert_eq!(uris(&r), ["ssh://config-home"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&xdg_home))]);
    let consulted: Vec<_> = r.nix_conf.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        consulted,
        vec![
            t.etc().join("nix.conf"),
            t.path("xdg-b/nix/nix.conf"),
            t.path("xdg-a/nix/nix.conf"),
            xdg_home.clone(),
        ]
    );

    // Without it, the first XDG_CONFIG_DIRS entry beats the later one.
    fs::remove_file(&xdg_home).unwrap();
    let r = resolve_nix_conf(&env_from(&map));
    assert_eq!(uris(&r), ["ssh://xdg-a"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&xdg_a))]);
    assert_eq!(r.nix_conf.files[3].state, FileState::Missing);

    // NIX_USER_CONF_FILES replaces the XDG files entirely.
    let only = t.write("only.conf", "max-jobs = 8\n");
    map.insert("NIX_USER_CONF_FILES".into(), show(&only));
    let r = resolve_nix_conf(&env_from(&map));
    assert_eq!(uris(&r), ["ssh://system"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", t.nix_conf())]);
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "8");
    assert_eq!(r.nix_conf.files.len(), 2);

    // NIX_CONFIG beats them all.
    map.insert("NIX_CONFIG".into(), "builders = ssh://nix-config".into());
    let r = resolve_nix_conf(&env_from(&map));
    assert_eq!(uris(&r), ["ssh://nix-config"]);
    assert_eq!(machine_locations(&r), ["NIX_CONFIG:1"]);
}

// ------------------------------------------------------------ layering

#[test]
fn builders_from_the_system_nix_conf_carry_its_file_and_line() {
    let t = Tree::new();
    let line = "builders = ssh://sys1 x86_64-linux; ssh://sys2";
    t.write(
        "etc/nix.conf",
        &format!("# system-wide\nsystem = x86_64-linux\n{line}\n"),
    );
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(uris(&r), ["ssh://sys1", "ssh://sys2"]);
    let loc = format!("{}:3", t.nix_conf());
    assert_eq!(machine_locations(&r), [loc.clone(), loc]);
    // Columns point at each store URI within the nix.conf line.
    let columns: Vec<_> = r
        .parsed
        .machines
        .iter()
        .map(|m| m.location.column)
        .collect();
    assert_eq!(columns, [Some(12), Some(37)]);
    assert_eq!(line.find("ssh://sys2").unwrap() + 1, 37);
    assert_eq!(
        r.parsed.machines[0].location.origin,
        Origin::file(t.etc().join("nix.conf"))
    );
    assert_eq!(r.parsed.machines[1].systems, ["x86_64-linux"]);
    assert!(!r.has_errors());
    assert_eq!(
        r.nix_conf.files,
        vec![rbtop::nixconf::ConsultedFile {
            path: t.etc().join("nix.conf"),
            state: FileState::Read,
        }]
    );
    assert!(
        r.consulted.contains(&format!("{}: read", t.nix_conf())),
        "{:?}",
        r.consulted
    );
    assert!(r.consulted.contains(&"NIX_CONFIG: not set".to_string()));
}

#[test]
fn a_user_file_overrides_the_system_file_and_nix_config_overrides_both() {
    let t = Tree::new();
    t.write("etc/nix.conf", "builders = ssh://system\n");
    let user = t.write("user/nix.conf", "# mine\nbuilders = ssh://user\n");
    let mut env = t.env();
    env.user_files = vec![user.clone()];

    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://user"]);
    assert_eq!(machine_locations(&r), [format!("{}:2", show(&user))]);

    env.nix_config = Some("max-jobs = 2\nbuilders = ssh://env1; ssh://env2".into());
    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://env1", "ssh://env2"]);
    assert_eq!(machine_locations(&r), ["NIX_CONFIG:2", "NIX_CONFIG:2"]);
    assert_eq!(r.parsed.machines[0].location.origin, Origin::NixConfigEnv);
    assert!(r.consulted.contains(&"NIX_CONFIG: set".to_string()));
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
}

#[test]
fn user_files_are_applied_lowest_priority_first() {
    let t = Tree::new();
    t.write("etc/nix.conf", "builders = ssh://system\n");
    let high = t.write("high.conf", "builders = ssh://high\n");
    let low = t.write("low.conf", "builders = ssh://low\nmax-jobs = 7\n");
    let missing = t.path("missing.conf");
    let mut env = t.env();
    env.user_files = vec![high.clone(), missing.clone(), low.clone()];

    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://high"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&high))]);
    // A setting only the low-priority file sets survives.
    assert_eq!(
        r.nix_conf.get("max-jobs").unwrap().location.to_string(),
        format!("{}:2", show(&low))
    );
    let files: Vec<_> = r
        .nix_conf
        .files
        .iter()
        .map(|f| (f.path.clone(), f.state.clone()))
        .collect();
    assert_eq!(
        files,
        vec![
            (t.etc().join("nix.conf"), FileState::Read),
            (low, FileState::Read),
            (missing.clone(), FileState::Missing),
            (high, FileState::Read),
        ]
    );
    // A missing user file is normal: no diagnostic.
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert!(
        r.consulted
            .contains(&format!("{}: not found", show(&missing))),
        "{:?}",
        r.consulted
    );
}

#[test]
fn a_later_line_in_the_same_file_overrides_an_earlier_one() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://first\nmax-jobs = 1\nbuilders = ssh://second\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://second"]);
    assert_eq!(machine_locations(&r), [format!("{}:3", t.nix_conf())]);
    let base = r.nix_conf.builders().base.unwrap();
    assert_eq!(base.value, "ssh://second");
    assert_eq!(base.location.line, 3);
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
}

#[test]
fn a_later_file_without_builders_does_not_reset_it() {
    let t = Tree::new();
    t.write("etc/nix.conf", "builders = ssh://system\n");
    let user = t.write("user.conf", "max-jobs = 4\n");
    let mut env = t.env();
    env.user_files = vec![user];
    env.nix_config = Some("cores = 2".into());
    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://system"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", t.nix_conf())]);
}

#[test]
fn values_are_whitespace_split_words_and_comments_are_cut() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "#builders = ssh://commented-out\n\
         \tbuilders   =   ssh://a \t x86_64-linux   # ssh://b\r\n\
         \n\
         max-jobs = 3#trailing\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    let base = r.nix_conf.get("builders").unwrap();
    assert_eq!(base.value, "ssh://a x86_64-linux");
    assert_eq!(base.location.to_string(), format!("{}:2", t.nix_conf()));
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "3");
    assert_eq!(uris(&r), ["ssh://a"]);
    assert_eq!(r.parsed.machines[0].systems, ["x86_64-linux"]);
    // "\tbuilders   =   " is 16 characters: the URI starts at column 17.
    assert_eq!(r.parsed.machines[0].location.column, Some(17));
    assert_eq!(r.nix_conf.settings.len(), 2);
}

// ------------------------------------------------------------- includes

#[test]
fn include_is_resolved_against_the_including_files_directory() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include conf.d/builders.conf\n");
    let inc = t.write(
        "etc/conf.d/builders.conf",
        "# included\nbuilders = ssh://included\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(uris(&r), ["ssh://included"]);
    assert_eq!(machine_locations(&r), [format!("{}:2", show(&inc))]);
    // Only the top-level file is listed as consulted.
    assert_eq!(r.nix_conf.files.len(), 1);
}

#[test]
fn settings_before_and_after_an_include_keep_their_order() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://before\ninclude inc.conf\nmax-jobs = 4\n",
    );
    let inc = t.write("etc/inc.conf", "max-jobs = 2\nbuilders = ssh://inside\n");
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    let main = t.nix_conf();
    let inc = show(&inc);
    assert_eq!(
        setting_order(&r.nix_conf),
        vec![
            ("builders".to_string(), format!("{main}:1")),
            ("max-jobs".to_string(), format!("{inc}:1")),
            ("builders".to_string(), format!("{inc}:2")),
            ("max-jobs".to_string(), format!("{main}:3")),
        ]
    );
    // The include comes after `builders = ssh://before`, so it wins...
    assert_eq!(uris(&r), ["ssh://inside"]);
    assert_eq!(machine_locations(&r), [format!("{inc}:2")]);
    // ...and the line after the include beats the included max-jobs.
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "4");

    // The other way round: a setting after the include overrides it.
    t.write("etc/nix.conf", "include inc.conf\nbuilders = ssh://after\n");
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://after"]);
    assert_eq!(machine_locations(&r), [format!("{main}:2")]);
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "2");
}

#[test]
fn nested_includes_are_relative_to_each_including_file() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include a/one.conf\n");
    t.write(
        "etc/a/one.conf",
        "include two.conf\nextra-platforms = one\n",
    );
    t.write("etc/a/two.conf", "include b/three.conf\n");
    let three = t.write("etc/a/b/three.conf", "builders = ssh://deep\n");
    // Decoys: the same names relative to the top-level file's directory.
    t.write("etc/two.conf", "builders = ssh://wrong-two\n");
    t.write("etc/b/three.conf", "builders = ssh://wrong-three\n");

    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(uris(&r), ["ssh://deep"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&three))]);
    assert_eq!(
        r.nix_conf
            .get("extra-platforms")
            .unwrap()
            .location
            .to_string(),
        format!("{}:2", show(&t.path("etc/a/one.conf")))
    );
}

#[test]
fn a_missing_include_is_an_error_at_the_include_line_and_reading_goes_on() {
    let t = Tree::new();
    let line = "include missing.conf";
    t.write(
        "etc/nix.conf",
        &format!("max-jobs = 1\n{line}\nbuilders = ssh://after\n"),
    );
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://after"]);
    assert_eq!(machine_locations(&r), [format!("{}:3", t.nix_conf())]);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert!(warnings(&r).is_empty(), "{}", dump(&r));
    let e = errs[0];
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(e.location.to_string(), format!("{}:2", t.nix_conf()));
    let expected = format!(
        "file '{}' included from '{}' not found",
        show(&t.path("etc/missing.conf")),
        t.nix_conf()
    );
    assert!(
        e.message.starts_with(&expected),
        "{:?} does not start with {expected:?}",
        e.message
    );
    assert_eq!(e.snippet.as_deref(), Some(line));
    assert!(r.has_errors());
    // The same error is in NixConf's own diagnostics.
    assert_eq!(r.nix_conf.diagnostics.len(), 1);
}

#[test]
fn a_missing_include_inside_an_included_file_names_that_file() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include sub/inc.conf\n");
    let inc = t.write("etc/sub/inc.conf", "\n\ninclude gone.conf\n");
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(errs[0].location.to_string(), format!("{}:3", show(&inc)));
    assert!(
        errs[0].message.starts_with(&format!(
            "file '{}' included from '{}' not found",
            show(&t.path("etc/sub/gone.conf")),
            show(&inc)
        )),
        "{}",
        errs[0].message
    );
}

#[test]
fn include_paths_are_normalised_like_nix_abs_path() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include ./sub/../gone.conf\n");
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert!(
        errs[0].message.starts_with(&format!(
            "file '{}' included from '{}' not found",
            show(&t.path("etc/gone.conf")),
            t.nix_conf()
        )),
        "{}",
        errs[0].message
    );
}

#[test]
fn bang_include_reads_a_present_file_and_ignores_a_missing_one() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "!include absent.conf\n!include present.conf\nmax-jobs = 5\n",
    );
    let present = t.write("etc/present.conf", "builders = ssh://optional\n");
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert!(r.nix_conf.diagnostics.is_empty());
    assert_eq!(uris(&r), ["ssh://optional"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&present))]);
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "5");
}

#[test]
fn include_does_not_expand_tilde_as_nix_does_not() {
    let t = Tree::new();
    t.write("etc/nix.conf", "!include ~/builders.conf\n");
    t.write("home/builders.conf", "builders = ssh://from-home\n");
    let literal = t.write(
        "etc/~/builders.conf",
        "builders = ssh://literal-tilde-dir\n",
    );
    let r = resolve_nix_conf(&t.env());
    // Nix reads <dir of nix.conf>/~/builders.conf, never $HOME/builders.conf.
    assert_eq!(uris(&r), ["ssh://literal-tilde-dir"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&literal))]);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{}", dump(&r));
    assert!(
        w[0].message.contains("does not expand '~'"),
        "{}",
        w[0].message
    );
}

#[test]
fn an_absolute_include_path_is_used_as_is() {
    let t = Tree::new();
    let elsewhere = t.write("elsewhere/b.conf", "builders = ssh://abs\n");
    t.write("etc/nix.conf", &format!("include {}\n", show(&elsewhere)));
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&elsewhere))]);
}

#[test]
fn an_include_cycle_is_an_error_and_everything_else_is_applied_once() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include a.conf\nmax-jobs = 9\n");
    let a = t.write("etc/a.conf", "builders = ssh://a\ninclude b.conf\n");
    let b = t.write(
        "etc/b.conf",
        "extra-platforms = i686-linux\ninclude a.conf\ncores = 3\n",
    );
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert!(warnings(&r).is_empty(), "{}", dump(&r));
    assert_eq!(errs[0].location.to_string(), format!("{}:2", show(&b)));
    assert!(
        errs[0].message.starts_with("include cycle"),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.contains(&show(&a)), "{}", errs[0].message);
    assert_eq!(uris(&r), ["ssh://a"]);
    assert_eq!(machine_locations(&r), [format!("{}:1", show(&a))]);
    assert_eq!(
        r.nix_conf.list("extra-platforms"),
        Some(strings(&["i686-linux"]))
    );
    // Lines after the cycle, in both files, are still applied.
    assert_eq!(r.nix_conf.get("cores").unwrap().value, "3");
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "9");
    assert_eq!(r.nix_conf.settings.len(), 4);
}

#[test]
fn a_file_including_itself_is_a_cycle() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://self\n!include ./nix.conf\n",
    );
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(errs[0].location.to_string(), format!("{}:2", t.nix_conf()));
    assert!(
        errs[0].message.contains("include cycle"),
        "{}",
        errs[0].message
    );
    assert_eq!(uris(&r), ["ssh://self"]);
    assert_eq!(r.nix_conf.settings.len(), 1);
}

#[test]
fn including_the_same_file_twice_is_not_a_cycle() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "include common.conf\nbuilders = ssh://between\ninclude common.conf\n",
    );
    let common = t.write("etc/common.conf", "extra-extra-platforms = x\n");
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    let locs: Vec<_> = r
        .nix_conf
        .settings
        .iter()
        .map(|s| s.location.to_string())
        .collect();
    assert_eq!(
        locs,
        [
            format!("{}:1", show(&common)),
            format!("{}:2", t.nix_conf()),
            format!("{}:1", show(&common)),
        ]
    );
    assert_eq!(uris(&r), ["ssh://between"]);
}

#[test]
fn include_in_nix_config_is_an_error() {
    let t = Tree::new();
    t.write("etc/inc.conf", "builders = ssh://never\n");
    let mut env = t.env();
    env.nix_config = Some("include inc.conf\nbuilders = ssh://env".into());
    let r = resolve_nix_conf(&env);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(errs[0].location.to_string(), "NIX_CONFIG:1");
    assert_eq!(errs[0].location.origin, Origin::NixConfigEnv);
    assert!(
        errs[0]
            .message
            .starts_with("can only include configuration 'inc.conf' from files"),
        "{}",
        errs[0].message
    );
    assert_eq!(uris(&r), ["ssh://env"]);
    assert_eq!(machine_locations(&r), ["NIX_CONFIG:2"]);

    // `!include` too: Nix checks for a file origin before looking at the path.
    env.nix_config = Some("!include inc.conf".into());
    let r = resolve_nix_conf(&env);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(errs[0].location.to_string(), "NIX_CONFIG:1");
    assert!(
        errs[0]
            .message
            .starts_with("can only include configuration 'inc.conf' from files"),
        "{}",
        errs[0].message
    );
    assert!(r.parsed.machines.is_empty(), "{:?}", uris(&r));
}

#[test]
fn an_unreadable_include_is_a_warning_not_an_error() {
    let t = Tree::new();
    fs::create_dir_all(t.path("etc/a-directory")).unwrap();
    t.write(
        "etc/nix.conf",
        "include a-directory\nbuilders = ssh://after\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert!(errors(&r).is_empty(), "{}", dump(&r));
    let warns = warnings(&r);
    assert_eq!(warns.len(), 1, "{}", dump(&r));
    assert_eq!(warns[0].location.to_string(), format!("{}:1", t.nix_conf()));
    assert!(
        warns[0].message.starts_with(&format!(
            "{} is a directory, not a regular file",
            show(&t.path("etc/a-directory"))
        )),
        "{}",
        warns[0].message
    );
    assert_eq!(uris(&r), ["ssh://after"]);
}

#[test]
fn an_unreadable_top_level_file_is_recorded_and_warned_about() {
    let t = Tree::new();
    let dir_as_file = t.path("user-conf-is-a-dir");
    fs::create_dir_all(&dir_as_file).unwrap();
    t.write("etc/nix.conf", "builders = ssh://system\n");
    let mut env = t.env();
    env.user_files = vec![dir_as_file.clone()];
    let r = resolve_nix_conf(&env);
    assert!(matches!(
        r.nix_conf.files[1].state,
        FileState::Unreadable(_)
    ));
    let warns = warnings(&r);
    assert_eq!(warns.len(), 1, "{}", dump(&r));
    // Line 0: the file as a whole.
    assert_eq!(warns[0].location.to_string(), show(&dir_as_file));
    assert!(errors(&r).is_empty());
    assert_eq!(uris(&r), ["ssh://system"]);
}

// ------------------------------------------------------ extra-builders

#[test]
fn extra_builders_are_appended_with_a_warning_that_nix_ignores_them() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://base1; ssh://base2\nextra-builders = ssh://extra1\n",
    );
    let user = t.write(
        "user.conf",
        "\nextra-builders = ssh://extra2 aarch64-linux\n",
    );
    let mut env = t.env();
    env.user_files = vec![user.clone()];
    let r = resolve_nix_conf(&env);

    assert_eq!(
        uris(&r),
        ["ssh://base1", "ssh://base2", "ssh://extra1", "ssh://extra2"]
    );
    let main = t.nix_conf();
    let user = show(&user);
    assert_eq!(
        machine_locations(&r),
        [
            format!("{main}:1"),
            format!("{main}:1"),
            format!("{main}:2"),
            format!("{user}:2"),
        ]
    );
    assert_eq!(r.parsed.machines[3].systems, ["aarch64-linux"]);
    assert!(errors(&r).is_empty(), "{}", dump(&r));
    let warns = warnings(&r);
    assert_eq!(warns.len(), 2, "{}", dump(&r));
    let warn_locations: Vec<_> = warns.iter().map(|w| w.location.to_string()).collect();
    assert_eq!(warn_locations, [format!("{main}:2"), format!("{user}:2")]);
    for w in &warns {
        assert!(
            w.message.starts_with(EXTRA_BUILDERS_WARNING),
            "{}",
            w.message
        );
        assert!(w.message.contains("ignores it"), "{}", w.message);
    }
    assert_eq!(
        warns[0].snippet.as_deref(),
        Some("extra-builders = ssh://extra1")
    );

    let chain = r.nix_conf.builders();
    assert_eq!(chain.base.unwrap().value, "ssh://base1; ssh://base2");
    let extras: Vec<_> = chain.extras.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(extras, ["ssh://extra1", "ssh://extra2 aarch64-linux"]);
}

#[test]
fn a_later_builders_line_drops_earlier_extra_builders() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://a\nextra-builders = ssh://b\nbuilders = ssh://c\nextra-builders = ssh://d\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://c", "ssh://d"]);
    let main = t.nix_conf();
    assert_eq!(
        machine_locations(&r),
        [format!("{main}:3"), format!("{main}:4")]
    );
    let warns = warnings(&r);
    assert_eq!(warns.len(), 1, "{}", dump(&r));
    assert_eq!(warns[0].location.to_string(), format!("{main}:4"));
    assert!(errors(&r).is_empty());

    // `builders` in NIX_CONFIG, applied last, drops the files' extras too.
    let mut env = t.env();
    env.nix_config = Some("builders = ssh://env".into());
    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://env"]);
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
}

#[test]
fn a_machine_in_both_builders_and_extra_builders_is_flagged() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://same\nextra-builders = ssh://same\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://same", "ssh://same"]);
    let warns = warnings(&r);
    assert_eq!(warns.len(), 2, "{}", dump(&r));
    assert!(warns[0].message.starts_with(EXTRA_BUILDERS_WARNING));
    assert_eq!(warns[1].location.to_string(), format!("{}:2", t.nix_conf()));
    assert!(
        warns[1].message.contains(&format!(
            "'ssh://same' is listed again (first at {}:1)",
            t.nix_conf()
        )),
        "{}",
        warns[1].message
    );
}

#[test]
fn empty_builders_means_no_machines_and_no_default_file() {
    let t = Tree::new();
    t.write("etc/machines", "ssh://from-default-file\n");
    t.write("etc/nix.conf", "builders =\n");
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.machines.is_empty(), "{:?}", uris(&r));
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    let base = r.nix_conf.builders().base.unwrap();
    assert_eq!(base.value, "");
    assert!(
        r.consulted.contains(&format!(
            "builders = empty (no builders) ({}:1)",
            t.nix_conf()
        )),
        "{:?}",
        r.consulted
    );

    // An empty `builders` followed by extra-builders: only the extras.
    t.write(
        "etc/nix.conf",
        "builders =   # none\nextra-builders = ssh://x\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://x"]);
    assert_eq!(warnings(&r).len(), 1, "{}", dump(&r));
    assert!(errors(&r).is_empty());
}

// --------------------------------------------- default @$NIX_CONF_DIR/machines

#[test]
fn without_builders_the_default_machines_file_is_read() {
    let t = Tree::new();
    let machines = t.write(
        "etc/machines",
        "# fleet\nssh://m1 x86_64-linux\n\nssh://m2 aarch64-linux - 4\n",
    );
    t.write("etc/nix.conf", "max-jobs = 1\n");
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(uris(&r), ["ssh://m1", "ssh://m2"]);
    let m = show(&machines);
    assert_eq!(machine_locations(&r), [format!("{m}:2"), format!("{m}:4")]);
    assert_eq!(r.parsed.machines[1].max_jobs, 4);
    assert!(r.nix_conf.builders().base.is_none());
    assert!(
        r.consulted
            .contains(&format!("builders not set: Nix's default @{m}")),
        "{:?}",
        r.consulted
    );
}

#[test]
fn without_builders_or_a_machines_file_there_are_no_machines_and_no_complaint() {
    let t = Tree::new();
    // No nix.conf at all either.
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.machines.is_empty());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert!(!r.has_errors());
    assert_eq!(r.nix_conf.files[0].state, FileState::Missing);
    assert!(
        r.consulted.contains(&format!(
            "builders not set: Nix's default @{} (not found)",
            show(&t.etc().join("machines"))
        )),
        "{:?}",
        r.consulted
    );
}

#[test]
fn extra_builders_without_builders_follow_the_default_file() {
    let t = Tree::new();
    let machines = t.write("etc/machines", "ssh://default\n");
    t.write("etc/nix.conf", "extra-builders = ssh://extra\n");
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://default", "ssh://extra"]);
    assert_eq!(
        machine_locations(&r),
        [
            format!("{}:1", show(&machines)),
            format!("{}:1", t.nix_conf())
        ]
    );
    assert_eq!(warnings(&r).len(), 1, "{}", dump(&r));
    assert!(warnings(&r)[0].message.starts_with(EXTRA_BUILDERS_WARNING));
}

// -------------------------------------------- locations inside builders values

#[test]
fn a_bad_entry_in_a_builders_value_points_into_the_nix_conf_line() {
    let t = Tree::new();
    let line = "builders = ssh://good x86_64-linux; ssh://bad x86_64-linux - many";
    t.write("etc/nix.conf", &format!("system = x86_64-linux\n{line}\n"));
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://good"]);
    assert_eq!(machine_locations(&r), [format!("{}:2", t.nix_conf())]);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert!(warnings(&r).is_empty(), "{}", dump(&r));
    let e = errs[0];
    assert_eq!(e.location.to_string(), format!("{}:2", t.nix_conf()));
    assert_eq!(e.location.column, Some(62));
    assert_eq!(line.find("many").unwrap() + 1, 62);
    assert_eq!(e.location.with_column(), format!("{}:2:62", t.nix_conf()));
    assert!(
        e.message.contains("max jobs (column #3) 'many'"),
        "{}",
        e.message
    );
    assert_eq!(e.snippet.as_deref(), Some(line));
    // The caret sits under "many".
    let rendered = e.render();
    let caret = rendered.lines().last().unwrap();
    assert_eq!(caret, format!("    | {}^", " ".repeat(61)));
}

#[test]
fn a_bad_store_uri_in_nix_config_points_at_its_column() {
    let t = Tree::new();
    let mut env = t.env();
    env.nix_config = Some("cores = 1\n  builders = ssh://ok;ssh://h:0".into());
    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://ok"]);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(errs[0].location.with_column(), "NIX_CONFIG:2:23");
    assert!(errs[0].message.contains("port 0"), "{}", errs[0].message);
}

#[test]
fn an_at_file_in_builders_is_followed_with_its_own_locations() {
    let t = Tree::new();
    let fleet = t.write(
        "fleet/machines",
        "ssh://f1 x86_64-linux\n# gap\nssh://f2 aarch64-linux\n",
    );
    let line = format!("builders = ssh://direct; @{}", show(&fleet));
    t.write("etc/nix.conf", &format!("{line}\n"));
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(uris(&r), ["ssh://direct", "ssh://f1", "ssh://f2"]);
    let f = show(&fleet);
    assert_eq!(
        machine_locations(&r),
        [
            format!("{}:1", t.nix_conf()),
            format!("{f}:1"),
            format!("{f}:3"),
        ]
    );
    assert_eq!(r.parsed.machines[1].location.origin, Origin::file(fleet));
}

#[test]
fn a_missing_at_file_in_builders_is_reported_at_its_column() {
    let t = Tree::new();
    let gone = t.path("gone/machines");
    let line = format!("builders = ssh://a;  @{}", show(&gone));
    t.write("etc/nix.conf", &format!("\n{line}\n"));
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://a"]);
    assert!(errors(&r).is_empty(), "{}", dump(&r));
    let warns = warnings(&r);
    assert_eq!(warns.len(), 1, "{}", dump(&r));
    assert_eq!(warns[0].location.to_string(), format!("{}:2", t.nix_conf()));
    assert_eq!(warns[0].location.column, Some(22));
    assert_eq!(line.find('@').unwrap() + 1, 22);
    assert!(
        warns[0]
            .message
            .contains(&format!("machines file '{}' does not exist", show(&gone))),
        "{}",
        warns[0].message
    );
}

#[test]
fn a_bad_entry_in_an_at_file_points_into_that_file() {
    let t = Tree::new();
    let fleet = t.write("fleet", "ssh://ok\nssh://bad - - - fast\n");
    t.write("etc/nix.conf", &format!("builders = @{}\n", show(&fleet)));
    let r = resolve_nix_conf(&t.env());
    assert_eq!(uris(&r), ["ssh://ok"]);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(
        errs[0].location.with_column(),
        format!("{}:2:17", show(&fleet))
    );
}

// ----------------------------------------------------------- illegal lines

#[test]
fn illegal_lines_are_errors_and_the_rest_of_the_file_still_applies() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders=ssh://glued\n\
         lonely\n  include one two\nbuilders ssh://no-equals\n\
         builders = ssh://ok\nsystem = aarch64-linux\n",
    );
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 4, "{}", dump(&r));
    assert!(warnings(&r).is_empty(), "{}", dump(&r));
    let at: Vec<_> = errs.iter().map(|e| e.location.with_column()).collect();
    let main = t.nix_conf();
    assert_eq!(
        at,
        [
            format!("{main}:1:1"),
            format!("{main}:2:1"),
            format!("{main}:3:3"),
            format!("{main}:4:1"),
        ]
    );
    for e in &errs {
        assert!(
            e.message.starts_with("syntax error in configuration line"),
            "{}",
            e.message
        );
    }
    assert_eq!(errs[0].snippet.as_deref(), Some("builders=ssh://glued"));
    // Nothing from the illegal lines became a setting.
    assert_eq!(
        setting_order(&r.nix_conf),
        vec![
            ("builders".to_string(), format!("{main}:5")),
            ("system".to_string(), format!("{main}:6")),
        ]
    );
    assert_eq!(uris(&r), ["ssh://ok"]);
    assert_eq!(r.parsed.machines[0].systems, ["aarch64-linux"]);
    assert!(r.has_errors());
}

#[test]
fn an_illegal_line_in_an_included_file_names_that_file() {
    let t = Tree::new();
    t.write("etc/nix.conf", "include inc.conf\nbuilders = ssh://top\n");
    let inc = t.write("etc/inc.conf", "max-jobs = 2\nmax-jobs=3\n");
    let r = resolve_nix_conf(&t.env());
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{}", dump(&r));
    assert_eq!(
        errs[0].location.with_column(),
        format!("{}:2:1", show(&inc))
    );
    assert_eq!(r.nix_conf.get("max-jobs").unwrap().value, "2");
    assert_eq!(uris(&r), ["ssh://top"]);
}

#[test]
fn nix_conf_problems_come_before_machine_problems() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "builders = ssh://x - - zero\nextra-builders = ssh://y\noops\n",
    );
    let r = resolve_nix_conf(&t.env());
    let main = t.nix_conf();
    let order: Vec<_> = r
        .parsed
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.location.to_string()))
        .collect();
    assert_eq!(
        order,
        [
            // nix.conf itself first...
            (Severity::Error, format!("{main}:3")),
            // ...then what Nix will not do with extra-builders...
            (Severity::Warning, format!("{main}:2")),
            // ...then the machine entries.
            (Severity::Error, format!("{main}:1")),
        ],
        "{}",
        dump(&r)
    );
    assert_eq!(uris(&r), ["ssh://y"]);
}

// ------------------------------------------------------------- system

#[test]
fn the_system_setting_is_the_default_for_an_unset_systems_column() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "system = aarch64-linux\n\
         builders = ssh://nosys; ssh://withsys x86_64-linux,i686-linux; ssh://dash - /key\n",
    );
    let r = resolve_nix_conf(&t.env());
    assert!(r.parsed.diagnostics.is_empty(), "{}", dump(&r));
    assert_eq!(r.local_system, "aarch64-linux");
    let systems: Vec<_> = r
        .parsed
        .machines
        .iter()
        .map(|m| m.systems.clone())
        .collect();
    assert_eq!(
        systems,
        vec![
            strings(&["aarch64-linux"]),
            strings(&["i686-linux", "x86_64-linux"]),
            strings(&["aarch64-linux"]),
        ]
    );
    assert_eq!(r.parsed.machines[2].ssh_key.as_deref(), Some("/key"));

    // The last `system` wins, wherever it is set.
    let mut env = t.env();
    env.nix_config = Some("system = riscv64-linux".into());
    let r = resolve_nix_conf(&env);
    assert_eq!(r.local_system, "riscv64-linux");
    assert_eq!(r.parsed.machines[0].systems, ["riscv64-linux"]);
}

#[test]
fn the_system_setting_also_applies_to_the_default_machines_file() {
    let t = Tree::new();
    t.write("etc/machines", "ssh://plain\n");
    let user = t.write("user.conf", "system = powerpc64le-linux\n");
    let mut env = t.env();
    env.user_files = vec![user];
    let r = resolve_nix_conf(&env);
    assert_eq!(uris(&r), ["ssh://plain"]);
    assert_eq!(r.parsed.machines[0].systems, ["powerpc64le-linux"]);
}

// ------------------------------------------------------- list settings

#[test]
fn list_settings_collect_extra_appends_across_files_in_order() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "system-features = kvm nixos-test\nextra-system-features = big-parallel\n",
    );
    let user = t.write(
        "user.conf",
        "extra-system-features =   gccarch-x86-64-v3   benchmark\n",
    );
    let mut env = t.env();
    env.user_files = vec![user];
    env.nix_config = Some("extra-system-features = ca-derivations".into());
    let conf = NixConf::load(&env);
    assert!(conf.diagnostics.is_empty(), "{:?}", conf.diagnostics);
    assert_eq!(
        conf.list("system-features"),
        Some(strings(&[
            "kvm",
            "nixos-test",
            "big-parallel",
            "gccarch-x86-64-v3",
            "benchmark",
            "ca-derivations",
        ]))
    );
    // `get` ignores the extra- lines.
    assert_eq!(conf.get("system-features").unwrap().value, "kvm nixos-test");
    assert_eq!(conf.list("trusted-users"), None);
}

#[test]
fn setting_a_list_again_drops_earlier_values_and_appends() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "system-features = a\nextra-system-features = b\nsystem-features = c d\n\
         extra-system-features = e\nsubstituters =\n",
    );
    let conf = NixConf::load(&t.env());
    assert_eq!(
        conf.list("system-features"),
        Some(strings(&["c", "d", "e"]))
    );
    // Set to empty is not the same as unset.
    assert_eq!(conf.list("substituters"), Some(Vec::new()));
}

#[test]
fn extra_platforms_is_itself_a_setting_that_extra_extra_platforms_appends_to() {
    // Nix looks the full name up first: `extra-platforms = x` *sets* the
    // `extra-platforms` setting (replacing earlier values), and
    // `extra-extra-platforms` appends to it.
    let t = Tree::new();
    t.write("etc/nix.conf", "extra-platforms = i686-linux\n");
    let user = t.write(
        "user.conf",
        "extra-platforms = aarch64-linux\nextra-extra-platforms = armv7l-linux\n",
    );
    let mut env = t.env();
    env.user_files = vec![user.clone()];
    let conf = NixConf::load(&env);
    assert_eq!(
        conf.list("extra-platforms"),
        Some(strings(&["aarch64-linux", "armv7l-linux"]))
    );
    assert_eq!(
        conf.get("extra-platforms").unwrap().location.to_string(),
        format!("{}:1", show(&user))
    );

    // Without the user file, the system file's value stands, plus NIX_CONFIG's append.
    let mut env = t.env();
    env.nix_config = Some("extra-extra-platforms = x86_64-darwin".into());
    let conf = NixConf::load(&env);
    assert_eq!(
        conf.list("extra-platforms"),
        Some(strings(&["i686-linux", "x86_64-darwin"]))
    );
}

#[test]
fn list_settings_follow_includes() {
    let t = Tree::new();
    t.write(
        "etc/nix.conf",
        "trusted-users = root\ninclude more.conf\nextra-trusted-users = carol\n",
    );
    t.write("etc/more.conf", "extra-trusted-users = alice bob\n");
    let conf = NixConf::load(&t.env());
    assert_eq!(
        conf.list("trusted-users"),
        Some(strings(&["root", "alice", "bob", "carol"]))
    );
}
