//! The machines grammar, case by case: every case of Nix's own machines tests
//! (src/libstore-tests/machines.cc), then what rbtop adds (located errors,
//! nothing lost, include warnings and cycles).

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rbtop::diagnostics::{Diagnostic, Origin};
use rbtop::machines::{Machine, MachinesText, Parsed, Parser};
use rbtop::nix_version::NixVersion;

const LOCAL: &str = "TEST_ARCH-TEST_OS";

fn parse(text: &str) -> Parsed {
    let mut parser = Parser::new(vec![LOCAL.to_string()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish()
}

fn parse_file(path: &Path) -> Parsed {
    let mut parser = Parser::new(vec![LOCAL.to_string()]);
    parser.parse_file(path);
    parser.finish()
}

fn uris(parsed: &Parsed) -> Vec<&str> {
    parsed.machines.iter().map(Machine::uri).collect()
}

fn errors(parsed: &Parsed) -> Vec<&Diagnostic> {
    parsed.errors().collect()
}

fn warnings(parsed: &Parsed) -> Vec<&Diagnostic> {
    parsed.warnings().collect()
}

fn only(parsed: &Parsed) -> &Machine {
    assert_eq!(parsed.machines.len(), 1, "{parsed:#?}");
    &parsed.machines[0]
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/machines")
        .join(name)
}

// ---- Nix's own cases ----

#[test]
fn empty_builders() {
    let parsed = parse("");
    assert!(parsed.machines.is_empty());
    assert!(parsed.diagnostics.is_empty());
}

#[test]
fn uri_only_gets_every_default() {
    let parsed = parse("nix@scratchy.labs.cs.uu.nl");
    let m = only(&parsed);
    assert_eq!(m.uri(), "ssh://nix@scratchy.labs.cs.uu.nl");
    assert_eq!(m.store.protocol, "ssh");
    assert_eq!(m.store.user.as_deref(), Some("nix"));
    assert_eq!(m.store.host.as_deref(), Some("scratchy.labs.cs.uu.nl"));
    assert_eq!(m.store.port, None);
    assert_eq!(m.systems, [LOCAL]);
    assert_eq!(m.ssh_key, None);
    assert_eq!(m.max_jobs, 1);
    assert_eq!(m.speed_factor, 1.0);
    assert!(m.supported_features.is_empty());
    assert!(m.mandatory_features.is_empty());
    assert_eq!(m.public_host_key, None);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
}

#[test]
fn uri_with_port() {
    let parsed = parse("nix@scratchy.labs.cs.uu.nl:2222");
    let m = only(&parsed);
    assert_eq!(m.uri(), "ssh://nix@scratchy.labs.cs.uu.nl:2222");
    assert_eq!(m.store.port, Some(2222));
    assert_eq!(m.store.host.as_deref(), Some("scratchy.labs.cs.uu.nl"));
}

#[test]
fn all_dashes_mean_defaults() {
    let parsed = parse("nix@scratchy.labs.cs.uu.nl - - - - - - -");
    let m = only(&parsed);
    assert_eq!(m.uri(), "ssh://nix@scratchy.labs.cs.uu.nl");
    assert_eq!(m.systems, [LOCAL]);
    assert_eq!(
        (m.ssh_key.as_deref(), m.max_jobs, m.speed_factor),
        (None, 1, 1.0)
    );
    assert!(m.supported_features.is_empty() && m.mandatory_features.is_empty());
    assert_eq!(m.public_host_key, None);
    assert!(parsed.diagnostics.is_empty());
}

#[test]
fn newline_separator() {
    let parsed = parse("nix@scratchy.labs.cs.uu.nl\nnix@itchy.labs.cs.uu.nl");
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@itchy.labs.cs.uu.nl"
        ]
    );
    assert_eq!(parsed.machines[1].location.to_string(), "--builders:2");
}

#[test]
fn semicolon_separator() {
    let parsed = parse("nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl");
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@itchy.labs.cs.uu.nl"
        ]
    );
    // Both on line 1; the column tells them apart.
    assert_eq!(parsed.machines[1].location.column, Some(30));
}

#[test]
fn comments_containing_semicolons_are_still_comments() {
    let parsed = parse(
        "# This is a comment ; this is still that comment\n\
         nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl\n\
         # This is also a comment ; this also is still that comment\n\
         nix@scabby.labs.cs.uu.nl\n",
    );
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@itchy.labs.cs.uu.nl",
            "ssh://nix@scabby.labs.cs.uu.nl"
        ]
    );
    assert!(errors(&parsed).is_empty());
}

#[test]
fn funny_whitespace() {
    let parsed = parse(
        "        # comment ; comment\n   \
         nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl   \n\
         \n    \n\
         \n ;;; \n\
         \n ; ; \n\
         nix@scabby.labs.cs.uu.nl\n\n",
    );
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@itchy.labs.cs.uu.nl",
            "ssh://nix@scabby.labs.cs.uu.nl"
        ]
    );
    assert!(errors(&parsed).is_empty());
}

fn assert_complete_scratchy(m: &Machine) {
    assert_eq!(m.uri(), "ssh://nix@scratchy.labs.cs.uu.nl");
    assert_eq!(m.systems, ["i686-linux"]);
    assert_eq!(
        m.ssh_key.as_deref(),
        Some("/home/nix/.ssh/id_scratchy_auto")
    );
    assert_eq!(m.max_jobs, 8);
    assert_eq!(m.speed_factor, 3.0);
    assert_eq!(m.supported_features, ["kvm"]);
    assert_eq!(m.mandatory_features, ["benchmark"]);
    assert_eq!(
        m.public_host_key.as_deref(),
        Some("SSH+HOST+PUBLIC+KEY+BASE64+ENCODED==")
    );
}

#[test]
fn complete_single_builder() {
    let parsed = parse(
        "nix@scratchy.labs.cs.uu.nl     i686-linux      /home/nix/.ssh/id_scratchy_auto        \
         8 3 kvm benchmark SSH+HOST+PUBLIC+KEY+BASE64+ENCODED==",
    );
    assert_complete_scratchy(only(&parsed));
    // Valid base64, as Nix requires, but not a key: kept, with a warning.
    let w = warnings(&parsed);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].message.contains("not an OpenSSH public key line"));
}

#[test]
fn complete_single_builder_with_tabs() {
    let parsed = parse(
        "nix@scratchy.labs.cs.uu.nl\ti686-linux\t/home/nix/.ssh/id_scratchy_auto\t8\t3\tkvm\t\
         benchmark\tSSH+HOST+PUBLIC+KEY+BASE64+ENCODED==",
    );
    assert_complete_scratchy(only(&parsed));
}

#[test]
fn comma_lists() {
    let parsed = parse(
        "nix@scratchy.labs.cs.uu.nl Arch1,Arch2 - - - SupportedFeature1,SupportedFeature2 \
         MandatoryFeature1,MandatoryFeature2",
    );
    let m = only(&parsed);
    assert_eq!(m.systems, ["Arch1", "Arch2"]);
    assert_eq!(
        m.supported_features,
        ["SupportedFeature1", "SupportedFeature2"]
    );
    assert_eq!(
        m.mandatory_features,
        ["MandatoryFeature1", "MandatoryFeature2"]
    );
}

#[test]
fn comma_lists_are_sets_as_in_nix() {
    let parsed = parse("b x86_64-linux,aarch64-linux,x86_64-linux - - - kvm,,kvm,big-parallel");
    let m = only(&parsed);
    assert_eq!(m.systems, ["aarch64-linux", "x86_64-linux"]);
    assert_eq!(m.supported_features, ["big-parallel", "kvm"]);
}

/// Each malformed value of Nix's `getMachinesWithIncorrectFormat`, with the
/// column (1-based character) where the bad field starts and a phrase of the message.
#[test]
fn each_malformed_number_and_key_is_rejected_with_its_column() {
    let cases = [
        (
            "nix@scratchy.labs.cs.uu.nl - - eight",
            32,
            "max jobs (column #3) 'eight'",
        ),
        (
            "nix@scratchy.labs.cs.uu.nl - - -1",
            32,
            "max jobs (column #3) '-1'",
        ),
        (
            "nix@scratchy.labs.cs.uu.nl - - 8 three",
            34,
            "speed factor (column #4) 'three' is not a number",
        ),
        (
            "nix@scratchy.labs.cs.uu.nl - - 8 -3",
            34,
            "speed factor must be >= 0",
        ),
        (
            "nix@scratchy.labs.cs.uu.nl - - 8 3 - - BAD_BASE64",
            40,
            "not valid base64: invalid character '_' at position 4",
        ),
        (
            "nix@scratchy.labs.cs.uu.nl - - 99999999999",
            32,
            "not a whole number of jobs",
        ),
    ];
    for (line, column, phrase) in cases {
        let parsed = parse(line);
        assert!(parsed.machines.is_empty(), "{line}: {parsed:#?}");
        let e = errors(&parsed);
        assert_eq!(e.len(), 1, "{line}: {e:#?}");
        assert_eq!(e[0].location.to_string(), "--builders", "{line}");
        assert_eq!(e[0].location.column, Some(column), "{line}");
        assert!(e[0].message.contains(phrase), "{line}: {}", e[0].message);
        assert_eq!(e[0].snippet.as_deref(), Some(line));
    }
}

#[test]
fn speed_factor_is_a_float_and_zero_means_one() {
    assert_eq!(only(&parse("b - - 1 2.5")).speed_factor, 2.5);
    assert_eq!(only(&parse("b - - 1 0")).speed_factor, 1.0);
    assert_eq!(only(&parse("b - - 1 0.0")).speed_factor, 1.0);
    assert_eq!(only(&parse("b - - 1 3")).speed_factor, 3.0);
}

#[test]
fn infinite_and_nan_speed_factors_are_kept_with_a_warning_as_nix_keeps_them() {
    for value in ["inf", "NaN", "infinity"] {
        let parsed = parse(&format!("b - - 1 {value}"));
        only(&parsed);
        assert!(
            warnings(&parsed)[0].message.contains("meaningless"),
            "{value}"
        );
    }
}

#[test]
fn a_dash_uri_is_not_a_machine() {
    let parsed = parse("- x86_64-linux");
    assert!(parsed.machines.is_empty());
    assert!(errors(&parsed)[0].message.contains("no store URI"));
}

#[test]
fn file_reference_valid() {
    let parsed = parse(&format!("@{}", fixture("valid").display()));
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@itchy.labs.cs.uu.nl",
            "ssh://nix@poochie.labs.cs.uu.nl"
        ]
    );
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    // Machines keep the included file's own file:line.
    assert_eq!(
        parsed.machines[2].location.to_string(),
        format!("{}:4", fixture("valid").display())
    );
}

#[test]
fn file_reference_to_empty_file() {
    let parsed = parse("@/dev/null");
    assert!(parsed.machines.is_empty());
    assert!(parsed.diagnostics.is_empty());
}

#[test]
fn file_reference_missing_is_a_warning_not_an_error() {
    let parsed = parse("@/not/a/file");
    assert!(parsed.machines.is_empty());
    assert!(errors(&parsed).is_empty());
    let w = warnings(&parsed);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].location.to_string(), "--builders");
    assert!(w[0].message.contains("'/not/a/file' does not exist"));
}

#[test]
fn file_reference_to_malformed_file_keeps_the_good_lines() {
    let path = fixture("bad_format");
    let parsed = parse(&format!("@{}", path.display()));
    // Nix throws for the whole file; rbtop rejects line 2 only.
    assert_eq!(
        uris(&parsed),
        [
            "ssh://nix@scratchy.labs.cs.uu.nl",
            "ssh://nix@poochie.labs.cs.uu.nl"
        ]
    );
    let e = errors(&parsed);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].location.to_string(), format!("{}:2", path.display()));
    assert_eq!(e[0].location.column, Some(87));
    assert!(e[0].message.contains("'eight'"));
}

#[test]
fn unreadable_file_reference_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file, even by root.
    let parsed = parse(&format!("@{}", dir.path().display()));
    let e = errors(&parsed);
    assert_eq!(e.len(), 1, "{parsed:#?}");
    assert!(e[0].message.contains("cannot read machines file"));
}

// ---- what rbtop adds ----

#[test]
fn a_bad_line_in_the_middle_hides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machines");
    fs::write(
        &path,
        "ssh://b1 x86_64-linux - 2\nssh://b2 x86_64-linux - two\nssh://b3 x86_64-linux - 3\n",
    )
    .unwrap();
    let parsed = parse_file(&path);
    assert_eq!(uris(&parsed), ["ssh://b1", "ssh://b3"]);
    assert_eq!(
        parsed.machines[1].location.to_string(),
        format!("{}:3", path.display())
    );
    let e = errors(&parsed);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].location.with_column(),
        format!("{}:2:25", path.display())
    );
}

#[test]
fn nested_includes_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    fs::write(&a, format!("ssh://a1\n@{}\nssh://a3\n", b.display())).unwrap();
    fs::write(&b, format!("ssh://b1 ; @{}\n", c.display())).unwrap();
    fs::write(&c, "ssh://c1\n").unwrap();
    let parsed = parse(&format!("@{}", a.display()));
    assert_eq!(
        uris(&parsed),
        ["ssh://a1", "ssh://b1", "ssh://c1", "ssh://a3"]
    );
    assert_eq!(
        parsed.machines[2].location.to_string(),
        format!("{}:1", c.display())
    );
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
}

#[test]
fn include_cycle_is_reported_and_broken() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::write(&a, format!("ssh://a1\n@{}\n", b.display())).unwrap();
    fs::write(&b, format!("ssh://b1\n@{}\nssh://b3\n", a.display())).unwrap();
    let parsed = parse(&format!("@{}", a.display()));
    assert_eq!(uris(&parsed), ["ssh://a1", "ssh://b1", "ssh://b3"]);
    let e = errors(&parsed);
    assert_eq!(e.len(), 1, "{:#?}", parsed.diagnostics);
    assert_eq!(e[0].location.to_string(), format!("{}:2", b.display()));
    assert!(e[0].message.contains("include cycle"), "{}", e[0].message);
}

#[test]
fn self_include_is_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    fs::write(&a, format!("ssh://a1 ; @{}\n", a.display())).unwrap();
    let parsed = parse_file(&a);
    assert_eq!(uris(&parsed), ["ssh://a1"]);
    assert_eq!(errors(&parsed).len(), 1);
}

#[test]
fn explicitly_named_missing_file_is_an_error() {
    let parsed = parse_file(Path::new("/no/such/machines"));
    let e = errors(&parsed);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].location.to_string(), "/no/such/machines");
}

#[test]
fn relative_include_is_read_from_cwd_with_a_warning() {
    // Cargo runs tests from the package root.
    let parsed = parse("@tests/fixtures/machines/valid");
    assert_eq!(parsed.machines.len(), 3);
    assert!(warnings(&parsed)[0].message.contains("is relative"));
}

#[test]
fn semicolon_in_comment_warns_about_older_nix() {
    let parsed = parse("ssh://a # old Nix ; reads this\nssh://b # no semicolon here\n");
    assert_eq!(uris(&parsed), ["ssh://a", "ssh://b"]);
    let w = warnings(&parsed);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].location.column, Some(19));
    assert!(w[0].message.contains("older than 2.30"));
    assert!(w[0].message.contains("Lix (every version)"));
    assert!(w[0].message.contains("'reads this'"));
}

#[test]
fn semicolon_in_comment_with_nothing_after_is_harmless() {
    let parsed = parse("ssh://a # trailing ;\n# ; ;\n");
    assert!(warnings(&parsed).is_empty(), "{:#?}", parsed.diagnostics);
}

#[test]
fn duplicate_uri_is_flagged() {
    let parsed = parse("ssh://a x86_64-linux\nssh://a aarch64-linux\n");
    assert_eq!(parsed.machines.len(), 2);
    let w = warnings(&parsed);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].location.to_string(), "--builders:2");
    assert!(w[0].message.contains("first at --builders"));
}

#[test]
fn port_warning_depends_on_the_local_nix() {
    let text = MachinesText::whole("nix@b:2222", Origin::BuildersFlag);
    for (version, warned) in [
        (None, true),
        (Some(NixVersion::new(2, 8, 0)), true),
        (Some(NixVersion::new(2, 31, 0)), false),
    ] {
        let mut parser = Parser::new(vec![LOCAL.into()]).with_local_nix(version);
        parser.parse_text(&text);
        let parsed = parser.finish();
        assert_eq!(parsed.machines.len(), 1);
        assert_eq!(warnings(&parsed).len(), usize::from(warned), "{version:?}");
    }
}

#[test]
fn helpful_warnings_do_not_reject_the_line() {
    let parsed = parse("b x86_64 - 0 1 - - - extra1 extra2");
    let m = only(&parsed);
    assert_eq!(m.max_jobs, 0);
    let messages: Vec<&str> = warnings(&parsed)
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].contains("system 'x86_64' has no '-'"));
    assert!(messages[1].contains("never sends a build"));
    assert!(messages[2].contains("2 field(s) after column #7 are ignored"));
}

#[test]
fn raw_key_blob_instead_of_pub_line_is_flagged() {
    let blob = "AAAAC3NzaC1lZDI1NTE5AAAAIJYfqESaiQlOrL3Wm1Q9s9q8b4mjj2nIuyqCZub5aGPi";
    let parsed = parse(&format!("b - - - - - - {blob}"));
    only(&parsed);
    assert!(warnings(&parsed)[0].message.contains("binary key blob"));
}

#[test]
fn other_store_kinds_are_machines_too() {
    let parsed = parse(
        "daemon ; local ; unix:///run/nix.sock ; /srv/store ; ssh-ng://b?remote-program=/opt/bin/nix-daemon",
    );
    let protocols: Vec<&str> = parsed
        .machines
        .iter()
        .map(|m| m.store.protocol.as_str())
        .collect();
    assert_eq!(protocols, ["daemon", "local", "unix", "local", "ssh-ng"]);
    assert_eq!(
        parsed.machines[4].store.params["remote-program"],
        "/opt/bin/nix-daemon"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // Non-ASCII in a comment-free field before the bad one.
    let parsed = parse("ssh://bü - - x");
    assert_eq!(errors(&parsed)[0].location.column, Some(14));
}

// ---- properties ----

/// How many machine entries current Nix sees in `text`, without includes.
fn entries(text: &str) -> usize {
    text.split('\n')
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|code| code.split(';'))
        .map(|e| e.trim_matches([' ', '\t', '\n', '\r']))
        .filter(|e| !e.is_empty())
        .count()
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ssh://b1".to_string()),
        Just("nix@b2:2222".to_string()),
        Just("ssh-ng://[::1]:22".to_string()),
        Just("-".to_string()),
        Just(";".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("x86_64-linux,aarch64-linux".to_string()),
        Just("kvm,big-parallel".to_string()),
        Just("c3NoLWVkMjU1MTkgQUFBQQ==".to_string()),
        "[0-9]{1,12}",
        "-?[0-9]{0,3}\\.?[0-9]{0,3}",
        "[a-zA-Z0-9+/=_:@?&.\\[\\]-]{1,12}",
        "\\PC{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Nothing is lost: every entry becomes a machine or exactly one error.
    #[test]
    fn every_entry_is_a_machine_or_an_error(tokens in prop::collection::vec(token(), 0..40)) {
        let text = tokens.join(" ");
        prop_assume!(!text.contains('@') || !text.split(['\n', ';']).any(|e| e.trim().starts_with('@')));
        let parsed = parse(&text);
        prop_assert_eq!(parsed.machines.len() + parsed.errors().count(), entries(&text), "{:?}", text);
        for d in &parsed.diagnostics {
            prop_assert!(d.location.line >= 1 && d.location.line <= text.split('\n').count());
        }
    }

    /// Arbitrary input never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }
}
