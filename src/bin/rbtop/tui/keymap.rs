//! Keys to actions: the defaults, overridden per action by the config
//! file's `[keys]` table. Key names are parsed by crokey (`ctrl-c`, `pageup`,
//! `shift-tab`, `j`); a single capital letter means that letter with shift.

use std::collections::{BTreeMap, HashMap};

use crokey::KeyCombination;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

#[derive(Clone, Debug)]
pub struct Keymap {
    actions: HashMap<KeyCombination, Action>,
    /// Per action, its keys in the order written, for help and the footer.
    keys: BTreeMap<Action, Vec<KeyCombination>>,
}

/// The built-in bindings.
const DEFAULTS: &[(Action, &[&str])] = &[
    (Action::Up, &["k", "up"]),
    (Action::Down, &["j", "down"]),
    (Action::Top, &["g", "home"]),
    (Action::Bottom, &["G", "end"]),
    (Action::PageUp, &["pageup"]),
    (Action::PageDown, &["pagedown"]),
    (Action::Detail, &["enter"]),
    (Action::NextPane, &["tab"]),
    (Action::Filter, &["/", "f3"]),
    (Action::Back, &["esc"]),
    (Action::NextSort, &["s", ">"]),
    (Action::PreviousSort, &["<"]),
    (Action::ReverseSort, &["S"]),
    (Action::Refresh, &["r", "f5"]),
    (Action::Diagnostics, &["d"]),
    (Action::Launch, &["b"]),
    (Action::Log, &["l"]),
    (Action::Cancel, &["x"]),
    (Action::Follow, &["F"]),
    (Action::NextMatch, &["n"]),
    (Action::PreviousMatch, &["N"]),
    (Action::Confirm, &["y"]),
    (Action::KillBuild, &["K"]),
    (Action::Explain, &["e"]),
    (Action::ScrollLeft, &["left"]),
    (Action::ScrollRight, &["right"]),
    (Action::Wrap, &["w"]),
    (Action::Command, &[":"]),
    (Action::Canary, &["c"]),
    (Action::CanaryAll, &["C"]),
    (Action::Help, &["?", "f1"]),
    (Action::Quit, &["q", "ctrl-c", "f10"]),
];

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::with_overrides(&BTreeMap::new()).expect("the default keys parse and do not clash")
    }
}

impl Keymap {
    /// The defaults with `overrides` (action name → keys) replacing the keys
    /// of the actions they name. Errors name the action and the key.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut bindings: BTreeMap<Action, Vec<String>> = DEFAULTS
            .iter()
            .map(|(action, keys)| (*action, keys.iter().map(|k| k.to_string()).collect()))
            .collect();
        for (name, keys) in overrides {
            let action = Action::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "[keys] '{name}' is not an action; the actions are: {}",
                    names.join(", ")
                )
            })?;
            bindings.insert(action, keys.clone());
        }
        Keymap::build(&bindings)
    }

    fn build(bindings: &BTreeMap<Action, Vec<String>>) -> Result<Keymap, String> {
        let mut actions = HashMap::new();
        let mut keys: BTreeMap<Action, Vec<KeyCombination>> = BTreeMap::new();
        for (&action, names) in bindings {
            for name in names {
                let key = parse_key(name).map_err(|e| {
                    format!("[keys] {}: '{name}' is not a key ({e})", action.name())
                })?;
                if let Some(other) = actions.insert(key, action)
                    && other != action
                {
                    return Err(format!(
                        "[keys] '{name}' is bound to both {} and {}",
                        other.name(),
                        action.name()
                    ));
                }
                keys.entry(action).or_default().push(key);
            }
        }
        // Quitting must always be possible.
        if keys.get(&Action::Quit).is_none_or(Vec::is_empty) {
            return Err("[keys] quit has no key".to_string());
        }
        Ok(Keymap { actions, keys })
    }

    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.actions.get(&combination(event)).copied()
    }

    /// The keys of an action as the operator would type them: `j`, `↓`, `ctrl-c`.
    pub fn keys_of(&self, action: Action) -> Vec<String> {
        self.keys
            .get(&action)
            .map(|keys| keys.iter().map(|k| display(*k)).collect())
            .unwrap_or_default()
    }

    /// The first key of an action, for the footer.
    pub fn first_key(&self, action: Action) -> String {
        self.keys_of(action).into_iter().next().unwrap_or_default()
    }
}

/// A key as pressed, normalised so that `?` or `G` match however the
/// terminal reports shift.
pub fn combination(event: &KeyEvent) -> KeyCombination {
    let mut key = KeyCombination::from(*event);
    match key.codes {
        // Shift is part of the character itself (`?`, `:`).
        crokey::OneToThree::One(KeyCode::Char(c)) if !c.is_ascii_alphabetic() => {
            key.modifiers.remove(KeyModifiers::SHIFT);
        }
        // Terminals send shift-tab as BackTab, with or without the flag.
        crokey::OneToThree::One(KeyCode::BackTab) => key.modifiers.remove(KeyModifiers::SHIFT),
        crokey::OneToThree::One(KeyCode::Tab) if key.modifiers.contains(KeyModifiers::SHIFT) => {
            key.codes = crokey::OneToThree::One(KeyCode::BackTab);
            key.modifiers.remove(KeyModifiers::SHIFT);
        }
        _ => {}
    }
    key
}

fn parse_key(name: &str) -> Result<KeyCombination, String> {
    let spelled = match name.chars().collect::<Vec<_>>().as_slice() {
        [c] if c.is_ascii_uppercase() => format!("shift-{}", c.to_ascii_lowercase()),
        _ => name.to_string(),
    };
    let key = crokey::parse(&spelled).map_err(|e| e.to_string())?;
    if !key.is_ansi_compatible() {
        return Err("only one key with modifiers works in every terminal".to_string());
    }
    let key = key.normalized();
    let event = KeyEvent::new(*key.codes.first(), key.modifiers);
    Ok(combination(&event))
}

fn display(key: KeyCombination) -> String {
    let code = *key.codes.first();
    let plain = key.modifiers.is_empty()
        || (key.modifiers == KeyModifiers::SHIFT && matches!(code, KeyCode::Char(_)));
    let name = match code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "↑".to_string(),
        KeyCode::Down => "↓".to_string(),
        KeyCode::Left => "←".to_string(),
        KeyCode::Right => "→".to_string(),
        KeyCode::Enter => "Enter".to_string(),
        KeyCode::Esc => "Esc".to_string(),
        KeyCode::Tab => "Tab".to_string(),
        KeyCode::BackTab => "Shift-Tab".to_string(),
        KeyCode::PageUp => "PgUp".to_string(),
        KeyCode::PageDown => "PgDn".to_string(),
        KeyCode::Home => "Home".to_string(),
        KeyCode::End => "End".to_string(),
        KeyCode::Backspace => "Backspace".to_string(),
        KeyCode::F(n) => format!("F{n}"),
        _ => key.to_string(),
    };
    if plain {
        name
    } else {
        let mut out = String::new();
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            out.push_str("Ctrl-");
        }
        if key.modifiers.contains(KeyModifiers::ALT) {
            out.push_str("Alt-");
        }
        if key.modifiers.contains(KeyModifiers::SHIFT) && code != KeyCode::BackTab {
            out.push_str("Shift-");
        }
        out + &name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn the_default_keys_of_the_issue_all_work() {
        let keys = Keymap::default();
        let cases = [
            (press(KeyCode::Char('j'), KeyModifiers::NONE), Action::Down),
            (press(KeyCode::Down, KeyModifiers::NONE), Action::Down),
            (press(KeyCode::Char('k'), KeyModifiers::NONE), Action::Up),
            (press(KeyCode::Up, KeyModifiers::NONE), Action::Up),
            (press(KeyCode::Char('g'), KeyModifiers::NONE), Action::Top),
            (
                press(KeyCode::Char('G'), KeyModifiers::SHIFT),
                Action::Bottom,
            ),
            // Some terminals report a capital without the shift flag.
            (
                press(KeyCode::Char('G'), KeyModifiers::NONE),
                Action::Bottom,
            ),
            (press(KeyCode::PageUp, KeyModifiers::NONE), Action::PageUp),
            (
                press(KeyCode::PageDown, KeyModifiers::NONE),
                Action::PageDown,
            ),
            (press(KeyCode::Enter, KeyModifiers::NONE), Action::Detail),
            (
                press(KeyCode::Char('/'), KeyModifiers::NONE),
                Action::Filter,
            ),
            (press(KeyCode::Esc, KeyModifiers::NONE), Action::Back),
            (
                press(KeyCode::Char('s'), KeyModifiers::NONE),
                Action::NextSort,
            ),
            (
                press(KeyCode::Char('S'), KeyModifiers::SHIFT),
                Action::ReverseSort,
            ),
            (
                press(KeyCode::Char('r'), KeyModifiers::NONE),
                Action::Refresh,
            ),
            (press(KeyCode::Tab, KeyModifiers::NONE), Action::NextPane),
            (press(KeyCode::Char('?'), KeyModifiers::SHIFT), Action::Help),
            (press(KeyCode::Char('?'), KeyModifiers::NONE), Action::Help),
            (press(KeyCode::Char('q'), KeyModifiers::NONE), Action::Quit),
            (
                press(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Action::Quit,
            ),
            (
                press(KeyCode::Char('b'), KeyModifiers::NONE),
                Action::Launch,
            ),
            (press(KeyCode::Char('l'), KeyModifiers::NONE), Action::Log),
            (
                press(KeyCode::Char('x'), KeyModifiers::NONE),
                Action::Cancel,
            ),
            (
                press(KeyCode::Char('F'), KeyModifiers::SHIFT),
                Action::Follow,
            ),
            (
                press(KeyCode::Char('n'), KeyModifiers::NONE),
                Action::NextMatch,
            ),
            (
                press(KeyCode::Char('N'), KeyModifiers::SHIFT),
                Action::PreviousMatch,
            ),
            (
                press(KeyCode::Char('y'), KeyModifiers::NONE),
                Action::Confirm,
            ),
        ];
        for (event, action) in cases {
            assert_eq!(keys.action(&event), Some(action), "{event:?}");
        }
        assert_eq!(
            keys.action(&press(KeyCode::Char('z'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::Canary)
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('C'), KeyModifiers::SHIFT)),
            Some(Action::CanaryAll)
        );
        // `f` is not `F`: follow needs the capital.
        assert_eq!(
            keys.action(&press(KeyCode::Char('f'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(keys.keys_of(Action::Bottom), ["G", "End"]);
        assert_eq!(keys.keys_of(Action::Quit), ["q", "Ctrl-c", "F10"]);
        // htop's keys.
        let f = |n| press(KeyCode::F(n), KeyModifiers::NONE);
        assert_eq!(keys.action(&f(1)), Some(Action::Help));
        assert_eq!(keys.action(&f(3)), Some(Action::Filter));
        assert_eq!(keys.action(&f(5)), Some(Action::Refresh));
        assert_eq!(keys.action(&f(10)), Some(Action::Quit));
        assert_eq!(
            keys.action(&press(KeyCode::Char('<'), KeyModifiers::NONE)),
            Some(Action::PreviousSort)
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('>'), KeyModifiers::NONE)),
            Some(Action::NextSort)
        );
    }

    #[test]
    fn an_override_replaces_only_the_keys_of_its_action() {
        let overrides = BTreeMap::from([
            (
                "down".to_string(),
                vec!["J".to_string(), "ctrl-n".to_string()],
            ),
            ("quit".to_string(), vec!["z".to_string()]),
        ]);
        let keys = Keymap::with_overrides(&overrides).unwrap();
        assert_eq!(
            keys.action(&press(KeyCode::Char('J'), KeyModifiers::SHIFT)),
            Some(Action::Down)
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('n'), KeyModifiers::CONTROL)),
            Some(Action::Down)
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            keys.action(&press(KeyCode::Char('k'), KeyModifiers::NONE)),
            Some(Action::Up)
        );
        let back_tab = BTreeMap::from([("next-pane".to_string(), vec!["shift-tab".to_string()])]);
        let keys = Keymap::with_overrides(&back_tab).unwrap();
        for modifiers in [KeyModifiers::SHIFT, KeyModifiers::NONE] {
            assert_eq!(
                keys.action(&press(KeyCode::BackTab, modifiers)),
                Some(Action::NextPane)
            );
        }
        assert_eq!(keys.keys_of(Action::NextPane), ["Shift-Tab"]);
    }

    #[test]
    fn bad_overrides_say_which_action_and_key() {
        let one = |action: &str, keys: &[&str]| {
            let map = BTreeMap::from([(
                action.to_string(),
                keys.iter().map(|k| k.to_string()).collect(),
            )]);
            Keymap::with_overrides(&map).unwrap_err()
        };
        assert!(one("explode", &["x"]).contains("'explode' is not an action"));
        assert!(one("down", &["ctrl-nope"]).contains("down: 'ctrl-nope' is not a key"));
        assert_eq!(
            one("down", &["k"]),
            "[keys] 'k' is bound to both up and down"
        );
        assert_eq!(one("quit", &[]), "[keys] quit has no key");
    }

    #[test]
    fn the_defaults_in_the_example_config_are_the_real_defaults() {
        let example = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"));
        let keys_section = example.split("[keys]").nth(1).unwrap();
        let defaults_part = keys_section.split("# The defaults:").nth(1).unwrap();
        let uncommented: String = defaults_part
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| line.contains(" = "))
            .map(|line| line.split("  #").next().unwrap().trim().to_string() + "\n")
            .collect();
        let table: BTreeMap<String, crate::config::KeyList> = toml::from_str(&uncommented).unwrap();
        assert_eq!(table.len(), Action::ALL.len(), "every action is listed");
        let overrides = table.iter().map(|(a, k)| (a.clone(), k.keys())).collect();
        let from_example = Keymap::with_overrides(&overrides).unwrap();
        let defaults = Keymap::default();
        for action in Action::ALL {
            assert_eq!(
                from_example.keys_of(action),
                defaults.keys_of(action),
                "{action:?}"
            );
        }
    }
}
