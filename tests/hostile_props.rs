//! Property tests of every parser of outside input, with the shapes a
//! hostile file or builder would send: control bytes, deep nesting, long
//! lines, many entries. None may panic (or overflow the stack), and what
//! each keeps stays within its bound (`rbtop::bounds`). Case counts are
//! modest so that CI stays fast.

use proptest::prelude::*;
use rbtop::bounds::{ATERM_DEPTH, DIAGNOSTICS_PER_LINE, SNIPPET};
use rbtop::diagnostics::Origin;
use rbtop::machines::{MachinesText, Parser};
use rbtop::nixconf::NixConfEnv;
use rbtop::probe::Facts;
use rbtop::sources::{SourceChoice, resolve};

/// Text built from the pieces the grammars care about, and hostile bytes.
fn hostile_text(max_len: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(";".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("=".to_string()),
        Just("@".to_string()),
        Just("ssh://".to_string()),
        Just("b".to_string()),
        Just("include ".to_string()),
        Just("builders = ".to_string()),
        Just("\x1b]0;T\x07".to_string()),
        Just("\x1b[2J".to_string()),
        Just("\u{202e}".to_string()),
        Just("\0".to_string()),
        "[a-z0-9,.:-]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..max_len).prop_map(|v| v.concat())
}

fn parse_machines(text: &str) -> rbtop::machines::Parsed {
    let mut parser = Parser::new(vec!["x86_64-linux".into()]);
    parser.parse_text(&MachinesText::whole(text, Origin::BuildersFlag));
    parser.finish()
}

fn assert_bounded(diagnostics: &[rbtop::diagnostics::Diagnostic]) {
    let mut per_line = std::collections::HashMap::new();
    for d in diagnostics {
        if let Some(snippet) = &d.snippet {
            // The window and a `…` at each end.
            assert!(snippet.chars().count() <= SNIPPET.limit + 2, "{snippet:?}");
        }
        *per_line
            .entry((d.location.origin.clone(), d.location.line))
            .or_insert(0) += 1;
        let rendered = d.render();
        assert!(
            !rendered.chars().any(|c| c.is_control() && c != '\n'),
            "{rendered:?}"
        );
    }
    for count in per_line.values() {
        assert!(
            *count <= DIAGNOSTICS_PER_LINE.limit + 1,
            "{count} on one line"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn machines_text_never_panics_and_its_diagnostics_are_bounded(text in hostile_text(400)) {
        let parsed = parse_machines(&text);
        assert_bounded(&parsed.diagnostics);
    }


    #[test]
    fn nix_config_text_never_panics(text in hostile_text(300)) {
        let dir = tempfile::tempdir().unwrap();
        let env = NixConfEnv {
            conf_dir: dir.path().to_path_buf(),
            user_files: Vec::new(),
            nix_config: Some(text),
        };
        let resolved = resolve(&SourceChoice::NixConf, &env, None);
        assert_bounded(&resolved.parsed.diagnostics);
    }

    #[test]
    fn aterm_of_any_nesting_never_overflows(
        opens in prop::collection::vec(prop_oneof![Just('['), Just('('), Just('"'), Just(','), Just(']'), Just(')')], 0..64),
        depth in 0usize..6000,
        close in any::<bool>(),
    ) {
        let mut text = format!("Derive({}", "[".repeat(depth));
        text.extend(opens);
        if close {
            text.push_str(&"]".repeat(depth));
        }
        let result = rbtop::derivation::parse(&text);
        if depth > ATERM_DEPTH.limit {
            let why = result.unwrap_err();
            prop_assert!(why.contains("bound of") || why.contains("expected"), "{}", why);
        }
    }

    #[test]
    fn facts_answers_never_panic(
        lines in prop::collection::vec(
            prop_oneof![
                "[a-z_]{1,16}=[ -~]{0,40}",
                "(load|mem_total_kib|uptime_s|cpus|nix_version|store_free_kib)=[0-9. a-z\x1b]{0,30}",
                any::<String>(),
            ],
            0..40,
        ),
    ) {
        let report = lines.join("\n");
        let _ = Facts::parse_with(&report, "n0nce");
        let _ = Facts::parse(&report);
    }

    #[test]
    fn internal_json_lines_never_panic(
        line in prop_oneof![
            any::<String>(),
            "@nix \\{[ -~]{0,200}",
            "@nix \\{\"action\":\"(start|stop|result|msg)\"[ -~]{0,120}\\}",
        ],
        nesting in 0usize..3000,
    ) {
        let _ = rbtop::jobs::record::parse_line(&line);
        // Deeply nested JSON: serde_json stops at its own recursion limit.
        let deep = format!("@nix {{\"action\":\"msg\",\"msg\":{}{}}}", "[".repeat(nesting), "]".repeat(nesting));
        let _ = rbtop::jobs::record::parse_line(&deep);
    }
}

proptest! {
    // Each case is a line of up to 2,000 entries: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_long_line_of_many_entries_is_bounded(entry in "[a-z@;# ]{1,6}", n in 1usize..2000) {
        let line = vec![entry; n].join(";");
        let parsed = parse_machines(&line);
        assert_bounded(&parsed.diagnostics);
    }
}
