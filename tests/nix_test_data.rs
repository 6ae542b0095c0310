//! rbtop's readers on test data Nix itself keeps (tests/fixtures/others/nix,
//! copied from NixOS/nix `src/libstore-tests/data/`, commit named in
//! tests/fixtures/others/README.md). The expectations are Nix's own, from
//! `src/libstore-tests/store-reference.cc`, restated per field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rbtop::machines::store_uri::parse;

fn data(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/others/nix")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// (fixture, protocol, user, host, port, params) as Nix parses the store
/// reference. rbtop names Nix's `daemon`/`unix` stores by what was written
/// (both reach the local daemon's socket), and keeps no path for `local`.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<u16>,
    &'static [(&'static str, &'static str)],
);

const ABCD: &[(&str, &str)] = &[("a", "b"), ("c", "d")];
const IPV6: &str = "fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e";

const CASES: &[Case] = &[
    ("auto", "auto", None, None, None, &[]),
    (
        "auto_param",
        "auto",
        None,
        None,
        None,
        &[("root", "/foo/bar/baz")],
    ),
    ("daemon_shorthand", "daemon", None, None, None, &[]),
    (
        "local_1",
        "local",
        None,
        None,
        None,
        &[("root", "/foo/bar/baz")],
    ),
    ("local_2", "local", None, None, None, &[("trusted", "true")]),
    (
        "local_3",
        "local",
        None,
        None,
        None,
        &[("root", "/foo bar/baz")],
    ),
    (
        "local_3_no_percent",
        "local",
        None,
        None,
        None,
        &[("root", "/foo bar/baz")],
    ),
    (
        "local_shorthand_1",
        "local",
        None,
        None,
        None,
        &[("root", "/foo/bar/baz")],
    ),
    ("local_shorthand_3", "local", None, None, None, &[]),
    (
        "local_shorthand_path_unix",
        "local",
        None,
        None,
        None,
        &[("trusted", "true")],
    ),
    ("ssh", "ssh", None, Some("localhost"), None, &[]),
    (
        "ssh_unbracketed_ipv6_1",
        "ssh",
        None,
        Some("::1"),
        None,
        &[],
    ),
    (
        "ssh_unbracketed_ipv6_2",
        "ssh",
        Some("userinfo"),
        Some(IPV6),
        None,
        &[],
    ),
    (
        "ssh_unbracketed_ipv6_3",
        "ssh",
        Some("userinfo"),
        Some(IPV6),
        None,
        ABCD,
    ),
    // Zone ids: `[…%25eth0]` in Nix's authority is the zone `eth0`.
    (
        "ssh_unbracketed_ipv6_4",
        "ssh",
        Some("userinfo"),
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%eth0"),
        None,
        ABCD,
    ),
    (
        "ssh_unbracketed_ipv6_5",
        "ssh",
        Some("userinfo"),
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%eth0"),
        None,
        ABCD,
    ),
    // Unbracketed, `%25` is taken literally: the zone `25` (Nix: `%2525`).
    (
        "ssh_unbracketed_ipv6_6",
        "ssh",
        Some("userinfo"),
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%25"),
        None,
        ABCD,
    ),
    (
        "ssh_unbracketed_ipv6_7",
        "ssh",
        Some("userinfo"),
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%eth0"),
        None,
        ABCD,
    ),
    (
        "ssh_unbracketed_ipv6_8",
        "ssh",
        None,
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%eth0"),
        None,
        ABCD,
    ),
    (
        "ssh_unbracketed_ipv6_9",
        "ssh",
        None,
        Some("fea5:23e1:3916:fc24:cb52:2837:2ecb:ea8e%eth0"),
        None,
        &[],
    ),
    (
        "unix",
        "unix",
        None,
        None,
        None,
        &[("max-connections", "7"), ("trusted", "true")],
    ),
    (
        "unix_shorthand",
        "daemon",
        None,
        None,
        None,
        &[("max-connections", "7"), ("trusted", "true")],
    ),
];

#[test]
fn store_references_parse_as_nix_parses_them() {
    for (name, protocol, user, host, port, params) in CASES {
        let text = data(&format!("store-reference/{name}.txt"));
        let store = parse(text.trim_end()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(store.protocol, *protocol, "{name}");
        assert_eq!(store.user.as_deref(), *user, "{name}");
        assert_eq!(store.host.as_deref(), *host, "{name}");
        assert_eq!(store.port, *port, "{name}");
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(store.params, params, "{name}");
    }
}

#[test]
fn every_store_reference_fixture_is_checked() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/others/nix/store-reference");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".txt")
                .to_string()
        })
        .collect();
    files.sort();
    let mut named: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    named.sort();
    assert_eq!(files, named);
}

/// Derivations Nix reads, and the two it refuses (libstore-tests
/// `derivation.cc`: `bad_version`, `bad_old_version_dyn_deps`).
#[test]
fn derivations_are_read_or_refused_as_nix_does() {
    for name in [
        "simple-derivation",
        "dyn-dep-derivation",
        "hello",
        "firefox",
        "ca/advanced-attributes",
        "ca/advanced-attributes-structured-attrs",
        "ia/advanced-attributes",
        "ia/advanced-attributes-structured-attrs",
    ] {
        let text = data(&format!("derivation/{name}.drv"));
        let drv = rbtop::derivation::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!drv.system.is_empty(), "{name}");
    }
    let simple = rbtop::derivation::parse(&data("derivation/simple-derivation.drv")).unwrap();
    assert_eq!(simple.system, "wasm-sel4");
    assert_eq!(simple.builder, "foo");
    assert_eq!(simple.env["BIG_BAD"], "WOLF");

    let bad_version = rbtop::derivation::parse(&data("derivation/bad-version.drv")).unwrap_err();
    assert!(
        bad_version.contains("unknown derivation ATerm format version 'invalid-version'"),
        "{bad_version}"
    );
    let old_dyn =
        rbtop::derivation::parse(&data("derivation/bad-old-version-dyn-deps.drv")).unwrap_err();
    assert!(old_dyn.contains("dynamic-derivation input"), "{old_dyn}");
}

/// Nix's recorded serve handshake (libstore-tests `serve-protocol.cc`,
/// `handshake_client_replay`): the server at 2.5, which the client accepts;
/// every truncation of it is an error.
#[tokio::test]
async fn nixs_serve_handshake_replays() {
    use rbtop::protocol::{ProtocolVersion, serve};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/others/nix/protocol/serve-protocol-handshake-to-client.bin");
    let log = std::fs::read(path).unwrap();
    let mut sink = Vec::new();
    let hello = serve::handshake(&mut &log[..], &mut sink).await.unwrap();
    assert_eq!(hello.server_version, ProtocolVersion::new(2, 5));
    assert_eq!(hello.version, ProtocolVersion::new(2, 5));
    for len in 0..log.len() {
        let mut sink = Vec::new();
        assert!(
            serve::handshake(&mut &log[..len], &mut sink).await.is_err(),
            "{len} bytes"
        );
    }
}
