//! Lix's TOML machines format, on the texts of Lix's own tests
//! (tests/fixtures/others/lix, source named in tests/fixtures/others/README.md):
//! read as Lix reads them when the local Nix is Lix, and otherwise one clear
//! error naming Lix's format and what Nix would make of it, never the
//! garbage machines a line-by-line reading gives.

use std::path::PathBuf;

use rbtop::diagnostics::Origin;
use rbtop::machines::{Machine, MachinesText, Parsed, Parser};
use rbtop::nix_version;

const LOCAL: &str = "TEST_ARCH-TEST_OS";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/others/lix")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(text: &str, lix: bool) -> Parsed {
    let mut parser = Parser::new(vec![LOCAL.to_string()]).with_lix(lix);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish()
}

fn lix(name: &str) -> Parsed {
    read(&fixture(name), true)
}

fn errors(parsed: &Parsed) -> Vec<String> {
    parsed.errors().map(|d| d.message.clone()).collect()
}

fn only(parsed: &Parsed) -> &Machine {
    assert_eq!(parsed.machines.len(), 1, "{parsed:#?}");
    assert_eq!(errors(parsed), Vec::<String>::new());
    &parsed.machines[0]
}

#[test]
fn uri_only_gets_lix_defaults() {
    let parsed = lix("uri_only.toml");
    let m = only(&parsed);
    assert_eq!(m.uri(), "ssh://nix@scratchy.labs.cs.uu.nl");
    assert_eq!(m.systems, [LOCAL]);
    assert_eq!(m.ssh_key, None);
    assert_eq!(m.max_jobs, 1);
    assert_eq!(m.speed_factor, 1.0);
    assert!(m.supported_features.is_empty());
    assert!(m.mandatory_features.is_empty());
    assert_eq!(m.public_host_key, None);
}

#[test]
fn multiple_machines() {
    let parsed = lix("multiple.toml");
    let mut uris: Vec<&str> = parsed.machines.iter().map(Machine::uri).collect();
    uris.sort();
    assert_eq!(
        uris,
        [
            "ssh://nix@itchy.labs.cs.uu.nl",
            "ssh://nix@scratchy.labs.cs.uu.nl"
        ]
    );
}

#[test]
fn complete_single_builder() {
    let parsed = lix("complete.toml");
    let m = only(&parsed);
    assert!(m.uri().ends_with("nix@scratchy.labs.cs.uu.nl"));
    assert_eq!(m.systems, ["i686-linux"]);
    assert_eq!(
        m.ssh_key.as_deref(),
        Some("/home/nix/.ssh/id_scratchy_auto")
    );
    assert_eq!(m.max_jobs, 8);
    assert_eq!(m.speed_factor, 3.0);
    assert_eq!(m.supported_features, ["kvm"]);
    assert_eq!(m.mandatory_features, ["benchmark"]);
    // Lix's expectation: the plain key, base64-encoded.
    assert_eq!(
        m.public_host_key.as_deref(),
        Some(
            "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUpZZnFFU2FpUWxPckwzV20xUTlzOXE4YjRtamoybkl1eXFDWnViNWFHUGkgbml4QHNjcmF0Y2h5"
        )
    );
}

#[test]
fn multi_options() {
    let parsed = lix("multi_options.toml");
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
fn what_lix_refuses_is_refused_with_lixs_reason() {
    for (name, reason) in [
        ("extra_key.toml", "extra-key"),
        ("no_uri.toml", "uri must be present"),
        ("negative_jobs.toml", "jobs must be >= 0"),
        ("too_high_version.toml", "not 42"),
        ("array_of_tables.toml", "table of name -> machine"),
        ("machine_not_table.toml", "must be a table"),
    ] {
        let parsed = lix(name);
        assert!(parsed.machines.is_empty(), "{name}: {parsed:#?}");
        let errors = errors(&parsed);
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(errors[0].contains(reason), "{name}: {errors:?}");
    }
}

#[test]
fn a_disabled_machine_is_left_out() {
    let text = "version = 1\n[machines.a]\nuri = \"ssh://a\"\nenable = false\n[machines.b]\nuri = \"ssh://b\"\n";
    let parsed = read(text, true);
    assert_eq!(only(&parsed).uri(), "ssh://b");
    assert_eq!(
        parsed.machines[0].location.line, 5,
        "at its [machines.b] line"
    );
}

#[test]
fn without_lix_each_file_is_one_error_naming_lixs_format() {
    for name in [
        "uri_only.toml",
        "complete.toml",
        "multiple.toml",
        "no_uri.toml",
    ] {
        let parsed = read(&fixture(name), false);
        assert!(parsed.machines.is_empty(), "{name}: {parsed:#?}");
        let errors = errors(&parsed);
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(
            errors[0].contains("Lix's TOML machines format"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("'ssh://[machines."),
            "what Nix makes of it: {errors:?}"
        );
    }
    let parsed = read("version = 1\n[machines.b1]\nuri = \"ssh://b1\"\n", false);
    assert!(errors(&parsed)[0].contains("'ssh://version' with systems '='"));
}

#[test]
fn the_classic_format_is_unchanged_under_lix() {
    let parsed = read("ssh://b1 x86_64-linux - 2\nmachines x86_64-linux\n", true);
    assert_eq!(parsed.machines.len(), 2);
}

#[test]
fn lix_is_told_by_its_version_line() {
    assert!(nix_version::is_lix("nix-store (Lix, like Nix) 2.93.3"));
    assert!(!nix_version::is_lix("nix-store (Nix) 2.26.3"));
    assert!(!nix_version::is_lix("nix (Determinate Nix 3.6.2) 2.29.0"));
}
