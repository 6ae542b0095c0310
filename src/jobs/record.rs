//! One line of Nix's `--log-format internal-json` stderr → a [`Record`].
//!
//! Written by hand because the format is Nix's own (nix-reference §4):
//! `@nix ` followed by one JSON object whose `action` is `start`, `stop`,
//! `result`, `msg` or `setPhase`. Any other line, and any `@nix` line that is
//! not such an object, is kept as [`Record::Plain`] so nothing is dropped.

use std::borrow::Cow;

use serde::Deserialize;

/// Activity types (`ActivityType` in Nix's `logging.hh`).
#[derive(Clone, Debug, PartialEq)]
pub enum Activity {
    Unknown,
    /// 100: `[path, from, to]`.
    CopyPath {
        path: String,
        from: String,
        to: String,
    },
    /// 101: `[url]`.
    FileTransfer {
        url: String,
    },
    /// 102: the whole realisation; carries `SetExpected`.
    Realise,
    /// 103.
    CopyPaths,
    /// 104: all builds; carries `Progress` for builds.
    Builds,
    /// 105: `[drvPath, machineName, curRound, nrRounds]`; `machine` is empty
    /// for a local build and the hook's URI for a remote one.
    Build {
        drv: String,
        machine: String,
    },
    OptimiseStore,
    VerifyPaths,
    /// 108: `[path, substituter]`.
    Substitute {
        path: String,
        substituter: String,
    },
    QueryPathInfo,
    PostBuildHook,
    /// 111: waiting for a machine, a build user or an output lock.
    BuildWaiting,
    /// 112 (Nix ≥ 2.19).
    FetchTree,
    /// 113 (Nix master): `[source path, hashing-only flag]`.
    FetchToStore {
        path: String,
    },
    /// A type this version of rbtop does not know (newer Nix).
    Other(u64),
}

impl Activity {
    fn from_wire(kind: u64, fields: &[Field]) -> Activity {
        let text = |i: usize| fields.get(i).map(Field::text).unwrap_or_default();
        match kind {
            0 => Activity::Unknown,
            100 => Activity::CopyPath {
                path: text(0),
                from: text(1),
                to: text(2),
            },
            101 => Activity::FileTransfer { url: text(0) },
            102 => Activity::Realise,
            103 => Activity::CopyPaths,
            104 => Activity::Builds,
            105 => Activity::Build {
                drv: text(0),
                machine: text(1),
            },
            106 => Activity::OptimiseStore,
            107 => Activity::VerifyPaths,
            108 => Activity::Substitute {
                path: text(0),
                substituter: text(1),
            },
            109 => Activity::QueryPathInfo,
            110 => Activity::PostBuildHook,
            111 => Activity::BuildWaiting,
            112 => Activity::FetchTree,
            113 => Activity::FetchToStore { path: text(0) },
            other => Activity::Other(other),
        }
    }
}

/// Result types (`ResultType` in Nix's `logging.hh`).
#[derive(Clone, Debug, PartialEq)]
pub enum LogResult {
    FileLinked,
    /// 101: one line the builder printed.
    BuildLogLine(String),
    UntrustedPath(String),
    CorruptedPath(String),
    /// 104: the builder announced a phase (`setPhase`).
    SetPhase(String),
    /// 105: `[done, expected, running, failed]`.
    Progress {
        done: u64,
        expected: u64,
        running: u64,
        failed: u64,
    },
    /// 106: `[activityType, expected]`.
    SetExpected {
        activity: u64,
        expected: u64,
    },
    /// 107: a line from the post-build hook.
    PostBuildLogLine(String),
    /// 108 (Nix master): a fetcher's status text.
    FetchStatus(String),
    /// 109 in Nix master: the store path a fetch-to-store produced (one
    /// string field).
    FetchToStore(String),
    /// 109 in Determinate Nix: a fixed-output hash mismatch, given as an
    /// object (`storePath`, `wanted`, `got`), not as a list of fields.
    HashMismatch,
    /// 110 in Determinate Nix: a build's result, as an object.
    BuildResult,
    /// A type (or a shape of a known type) this version does not know.
    Other(u64),
}

impl LogResult {
    fn from_wire(kind: u64, fields: &Fields) -> LogResult {
        // Determinate Nix sends some results as an object: which one is
        // meant depends on the shape, since 109 means different things.
        let fields = match fields {
            Fields::List(list) => list.as_slice(),
            Fields::Object => {
                return match kind {
                    109 => LogResult::HashMismatch,
                    110 => LogResult::BuildResult,
                    other => LogResult::Other(other),
                };
            }
        };
        let text = |i: usize| fields.get(i).map(Field::text).unwrap_or_default();
        let number = |i: usize| fields.get(i).map(Field::number).unwrap_or_default();
        match kind {
            100 => LogResult::FileLinked,
            101 => LogResult::BuildLogLine(text(0)),
            102 => LogResult::UntrustedPath(text(0)),
            103 => LogResult::CorruptedPath(text(0)),
            104 => LogResult::SetPhase(text(0)),
            105 => LogResult::Progress {
                done: number(0),
                expected: number(1),
                running: number(2),
                failed: number(3),
            },
            106 => LogResult::SetExpected {
                activity: number(0),
                expected: number(1),
            },
            107 => LogResult::PostBuildLogLine(text(0)),
            108 if matches!(fields, [Field::Text(_)]) => LogResult::FetchStatus(text(0)),
            109 if matches!(fields, [Field::Text(_)]) => LogResult::FetchToStore(text(0)),
            other => LogResult::Other(other),
        }
    }
}

/// Nix's verbosity levels: 0 error, 1 warn, 2 notice, 3 info, 4 talkative,
/// 5 chatty, 6 debug, 7 vomit.
pub type Level = u8;
pub const LEVEL_ERROR: Level = 0;
pub const LEVEL_INFO: Level = 3;

#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub id: u64,
    /// The enclosing activity; Nix sends it from 2.18 on (never in 2.8).
    /// 0 means "none", as Nix writes it.
    pub parent: Option<u64>,
    pub level: Level,
    pub activity: Activity,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub level: Level,
    /// As Nix wrote it, ANSI colours included.
    pub text: String,
    /// Error records carry the message without the `error:` prefix.
    pub raw: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Start(Start),
    Stop {
        id: u64,
    },
    Result {
        id: u64,
        outcome: LogResult,
    },
    Message(Message),
    /// `{"action":"setPhase"}`: what a builder prints; Nix turns it into a
    /// `SetPhase` result, so it shows up raw only where Nix relayed it as text.
    SetPhase(String),
    /// Anything else, verbatim (without the trailing newline).
    Plain(String),
}

/// `fields`: a list in Nix; Determinate Nix also writes an object.
#[derive(Debug)]
enum Fields {
    List(Vec<Field>),
    Object,
}

/// By hand rather than `untagged`, which would buffer every list first
/// (this is the hot path of a million-line log).
impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list or an object")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Fields, A::Error> {
                let mut list = Vec::new();
                while let Some(field) = seq.next_element()? {
                    list.push(field);
                }
                Ok(Fields::List(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Fields::Object)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// A `fields` entry: Nix writes integers and strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field {
    Number(u64),
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Field {
    fn text(&self) -> String {
        match self {
            Field::Text(s) => s.clone(),
            Field::Number(n) => n.to_string(),
            Field::Other(_) => String::new(),
        }
    }

    fn number(&self) -> u64 {
        match self {
            Field::Number(n) => *n,
            Field::Text(s) => s.parse().unwrap_or(0),
            Field::Other(_) => 0,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    id: Option<u64>,
    parent: Option<u64>,
    level: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<u64>,
    text: Option<String>,
    fields: Option<Fields>,
    msg: Option<String>,
    raw_msg: Option<String>,
    phase: Option<String>,
}

const PREFIX: &str = "@nix ";

/// Parse one stderr line (with or without its trailing newline).
pub fn parse_line(line: &str) -> Record {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    match json_part(line).and_then(parse_json) {
        Some(record) => record,
        None => Record::Plain(line.to_string()),
    }
}

/// The JSON after `@nix `, also behind the `<N>` priority prefix Nix 2.8 adds
/// under systemd (`IN_SYSTEMD=1`).
fn json_part(line: &str) -> Option<&str> {
    if let Some(json) = line.strip_prefix(PREFIX) {
        return Some(json);
    }
    let rest = line.strip_prefix('<')?;
    let close = rest.find('>')?;
    if close == 0 || !rest[..close].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest[close + 1..].strip_prefix(PREFIX)
}

fn parse_json(json: &str) -> Option<Record> {
    let wire: Wire = serde_json::from_str(json).ok()?;
    let none = Fields::List(Vec::new());
    let fields = wire.fields.as_ref().unwrap_or(&none);
    let list = match fields {
        Fields::List(list) => list.as_slice(),
        Fields::Object => &[],
    };
    let level = wire.level.map(|l| l.clamp(0, 255) as Level);
    Some(match wire.action.as_ref() {
        "start" => Record::Start(Start {
            id: wire.id?,
            parent: wire.parent.filter(|&p| p != 0),
            level: level.unwrap_or(LEVEL_INFO),
            activity: Activity::from_wire(wire.kind.unwrap_or(0), list),
            text: wire.text.unwrap_or_default(),
        }),
        "stop" => Record::Stop { id: wire.id? },
        "result" => Record::Result {
            id: wire.id?,
            outcome: LogResult::from_wire(wire.kind?, fields),
        },
        "msg" => Record::Message(Message {
            level: level.unwrap_or(LEVEL_ERROR),
            text: wire.msg?,
            raw: wire.raw_msg,
        }),
        "setPhase" => Record::SetPhase(wire.phase?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_kept_verbatim() {
        assert_eq!(parse_line("hello\n"), Record::Plain("hello".into()));
        assert_eq!(
            parse_line("@nix {broken"),
            Record::Plain("@nix {broken".into())
        );
        assert_eq!(
            parse_line(r#"@nix {"action":"dance"}"#),
            Record::Plain(r#"@nix {"action":"dance"}"#.into())
        );
        assert_eq!(parse_line(""), Record::Plain(String::new()));
    }

    #[test]
    fn build_start_with_and_without_parent() {
        let old = parse_line(
            r#"@nix {"action":"start","fields":["/nix/store/a-x.drv","ssh://b1",1,1],"id":7,"level":3,"text":"building","type":105}"#,
        );
        let new = parse_line(
            r#"@nix {"action":"start","fields":["/nix/store/a-x.drv","ssh://b1",1,1],"id":7,"level":3,"parent":5,"text":"building","type":105}"#,
        );
        let Record::Start(old) = old else {
            panic!("{old:?}")
        };
        let Record::Start(new) = new else {
            panic!("{new:?}")
        };
        assert_eq!(old.parent, None);
        assert_eq!(new.parent, Some(5));
        assert_eq!(
            old.activity,
            Activity::Build {
                drv: "/nix/store/a-x.drv".into(),
                machine: "ssh://b1".into()
            }
        );
    }

    #[test]
    fn parent_zero_means_none() {
        let Record::Start(start) = parse_line(
            r#"@nix {"action":"start","id":1,"level":0,"parent":0,"text":"","type":102}"#,
        ) else {
            panic!()
        };
        assert_eq!(start.parent, None);
        assert_eq!(start.activity, Activity::Realise);
    }

    #[test]
    fn results() {
        assert_eq!(
            parse_line(r#"@nix {"action":"result","fields":["line \"1\""],"id":3,"type":101}"#),
            Record::Result {
                id: 3,
                outcome: LogResult::BuildLogLine("line \"1\"".into())
            }
        );
        assert_eq!(
            parse_line(r#"@nix {"action":"result","fields":[1,4,2,0],"id":3,"type":105}"#),
            Record::Result {
                id: 3,
                outcome: LogResult::Progress {
                    done: 1,
                    expected: 4,
                    running: 2,
                    failed: 0
                }
            }
        );
        assert_eq!(
            parse_line(r#"@nix {"action":"result","fields":[104,3],"id":3,"type":106}"#),
            Record::Result {
                id: 3,
                outcome: LogResult::SetExpected {
                    activity: 104,
                    expected: 3
                }
            }
        );
    }

    #[test]
    fn messages_and_systemd_prefix() {
        let line = r#"<3>@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"error: x","raw_msg":"x"}"#;
        assert_eq!(
            parse_line(line),
            Record::Message(Message {
                level: 0,
                text: "error: x".into(),
                raw: Some("x".into())
            })
        );
        assert_eq!(
            parse_line(r#"@nix {"action":"setPhase","phase":"buildPhase"}"#),
            Record::SetPhase("buildPhase".into())
        );
    }

    #[test]
    fn newer_types_by_version_and_shape() {
        let Record::Start(start) = parse_line(
            r#"@nix {"action":"start","fields":["/tmp/src",0],"id":4,"level":4,"parent":0,"text":"copying '/tmp/src' to the store","type":113}"#,
        ) else {
            panic!()
        };
        assert_eq!(
            start.activity,
            Activity::FetchToStore {
                path: "/tmp/src".into()
            }
        );
        let result = |line: &str| match parse_line(line) {
            Record::Result { outcome, .. } => outcome,
            other => panic!("{other:?}"),
        };
        // Nix master: 109 is the fetched store path.
        assert_eq!(
            result(r#"@nix {"action":"result","fields":["/nix/store/a-src"],"id":4,"type":109}"#),
            LogResult::FetchToStore("/nix/store/a-src".into())
        );
        // Determinate Nix: 109 is a hash mismatch, 110 a build result, as objects.
        assert_eq!(
            result(
                r#"@nix {"action":"result","fields":{"storePath":"/nix/store/a.drv","wanted":"sha256-x","got":"sha256-y"},"id":4,"type":109}"#
            ),
            LogResult::HashMismatch
        );
        assert_eq!(
            result(r#"@nix {"action":"result","fields":{"success":false},"id":4,"type":110}"#),
            LogResult::BuildResult
        );
        // Unknown types and unknown shapes stay unknown.
        assert_eq!(
            result(r#"@nix {"action":"result","fields":[1,2],"id":4,"type":109}"#),
            LogResult::Other(109)
        );
        assert_eq!(
            result(r#"@nix {"action":"result","fields":["x"],"id":4,"type":150}"#),
            LogResult::Other(150)
        );
        let Record::Start(start) =
            parse_line(r#"@nix {"action":"start","id":5,"level":4,"text":"","type":190}"#)
        else {
            panic!()
        };
        assert_eq!(start.activity, Activity::Other(190));
    }
}
