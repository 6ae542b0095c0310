//! The `:` command line (k9s style), kept small: `:sort COLUMN`,
//! `:filter WORDS`, `:build WHAT`, `:quit`. Each does what its key does;
//! a line that names no command says so and stays open to be fixed.

use crossterm::event::KeyEvent;

use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect};
use crate::tui::text_input::{self, TextKey};
use rbtop::dashboard::SortKey;

/// The line being typed, and why the last Enter did nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    pub text: String,
    pub error: Option<String>,
}

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Sort { key: SortKey, reversed: bool },
    Filter(String),
    Build(String),
    Quit,
}

/// The commands, for the footer and for a line that names none.
pub const USAGE: &str = "sort COLUMN[!] · filter WORDS · build WHAT · quit";

/// `sort latency`, `sort load!` (reversed), `filter x86 kvm`, `build ./x.nix`, `q`.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim().trim_start_matches(':');
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match word {
        "q" | "quit" | "q!" => Ok(Command::Quit),
        "filter" | "f" => Ok(Command::Filter(rest.to_string())),
        "build" | "b" => Ok(Command::Build(rest.to_string())),
        "sort" | "s" => {
            let reversed = rest.ends_with('!');
            let name = rest.trim_end_matches('!').trim();
            let key = SortKey::ALL
                .into_iter()
                .find(|k| k.name() == name || k.name().split(' ').next() == Some(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "no column '{name}' to sort by; the columns are: {}",
                        names.join(", ")
                    )
                })?;
            Ok(Command::Sort { key, reversed })
        }
        "" => Err(format!("type a command: {USAGE}")),
        other => Err(format!("'{other}' is not a command: {USAGE}")),
    }
}

impl App {
    pub(in crate::tui) fn open_command_line(&mut self) {
        self.editing_filter = false;
        self.command_line = Some(CommandLine::default());
    }

    /// Characters are the line; Enter runs it, Esc closes.
    pub(in crate::tui) fn command_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(line) = &mut self.command_line else {
            return AppEffect::None;
        };
        match text_input::edit(&mut line.text, key) {
            TextKey::Cancel => self.command_line = None,
            TextKey::Edited => line.error = None,
            TextKey::Other => return self.quit_only(&key),
            TextKey::Submit => match parse(&line.text) {
                Err(e) => line.error = Some(e),
                Ok(command) => {
                    self.command_line = None;
                    return self.run_command(command);
                }
            },
        }
        AppEffect::None
    }

    fn run_command(&mut self, command: Command) -> AppEffect {
        match command {
            Command::Quit => return AppEffect::Quit,
            Command::Sort { key, reversed } => {
                self.sort.key = key;
                self.sort.reversed = reversed;
                self.refresh_rows();
            }
            Command::Filter(words) => {
                self.filter = words;
                self.refresh_rows();
            }
            Command::Build(what) => {
                self.update(Action::Launch);
                if let Some(form) = &mut self.form {
                    form.what = what;
                }
            }
        }
        AppEffect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixture::{self, key, press};
    use crossterm::event::KeyCode;

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(
            parse("sort load!"),
            Ok(Command::Sort {
                key: SortKey::Load,
                reversed: true
            })
        );
        assert_eq!(
            parse(":sort free"),
            Ok(Command::Sort {
                key: SortKey::FreeStore,
                reversed: false
            })
        );
        assert_eq!(
            parse("filter x86 kvm"),
            Ok(Command::Filter("x86 kvm".into()))
        );
        assert_eq!(parse("build ./a.nix"), Ok(Command::Build("./a.nix".into())));
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert!(
            parse("sort nothing")
                .unwrap_err()
                .contains("the columns are: machines order")
        );
        assert!(
            parse("explode")
                .unwrap_err()
                .starts_with("'explode' is not a command")
        );
    }

    #[test]
    fn colon_runs_a_command_and_quitting_still_asks_with_builds_running() {
        let mut app = fixture::mixed_fleet();
        press(&mut app, ":sort latency");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.sort.key, SortKey::Latency);
        assert!(app.command_line.is_none());
        press(&mut app, ":nope");
        app.on_key(key(KeyCode::Enter));
        assert!(
            app.command_line.as_ref().unwrap().error.is_some(),
            "stays open"
        );
        app.on_key(key(KeyCode::Esc));
        press(&mut app, ":build ./x.nix");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.form.as_ref().unwrap().what, "./x.nix");
        app.on_key(key(KeyCode::Esc));
        app.launched(Ok(fixture::running_job(1, 3)));
        press(&mut app, ":quit");
        assert_eq!(app.on_key(key(KeyCode::Enter)), AppEffect::None);
        assert!(app.confirm.as_ref().unwrap().is_quit());
    }
}
