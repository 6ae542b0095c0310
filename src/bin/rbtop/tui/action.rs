//! What a key can do. The keymap and the config file name these actions, so
//! their kebab-case names are a stable interface.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Open or close the selected host's detail pane.
    Detail,
    /// Start typing a filter.
    Filter,
    /// Clear the filter, or close whatever is open.
    Back,
    NextSort,
    /// Sort by the column before (htop's `<`).
    PreviousSort,
    ReverseSort,
    Refresh,
    NextPane,
    Diagnostics,
    Help,
    Quit,
    /// Open the form that launches a build.
    Launch,
    /// Open the selected job's (or derivation's) log.
    Log,
    /// Ask to cancel the selected job (again: skip the grace period).
    Cancel,
    /// Stick the log to its newest line again.
    Follow,
    NextMatch,
    PreviousMatch,
    /// Answer yes to a question (cancel this job?).
    Confirm,
    /// Ask to kill the remote build selected in the detail pane, on its builder.
    KillBuild,
    /// Why a derivation goes to which machine: the eligibility explainer.
    Explain,
    /// In a log: scroll sideways.
    ScrollLeft,
    ScrollRight,
    /// In a log: wrap long lines, or cut them (and scroll sideways).
    Wrap,
    /// The `:` command line (`:sort`, `:filter`, `:build`, `:quit`).
    Command,
    /// A canary build on the selected host: can Nix build there?
    Canary,
    /// A canary build on every host that is up.
    CanaryAll,
}

impl Action {
    /// Every action, in the order the help screen lists them.
    pub const ALL: [Action; 32] = [
        Action::Up,
        Action::Down,
        Action::Top,
        Action::Bottom,
        Action::PageUp,
        Action::PageDown,
        Action::Detail,
        Action::NextPane,
        Action::Filter,
        Action::Back,
        Action::NextSort,
        Action::PreviousSort,
        Action::ReverseSort,
        Action::Refresh,
        Action::Diagnostics,
        Action::Launch,
        Action::Log,
        Action::Follow,
        Action::ScrollLeft,
        Action::ScrollRight,
        Action::Wrap,
        Action::NextMatch,
        Action::PreviousMatch,
        Action::Cancel,
        Action::KillBuild,
        Action::Explain,
        Action::Canary,
        Action::CanaryAll,
        Action::Confirm,
        Action::Command,
        Action::Help,
        Action::Quit,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageUp => "page-up",
            Action::PageDown => "page-down",
            Action::Detail => "detail",
            Action::Filter => "filter",
            Action::Back => "back",
            Action::NextSort => "next-sort",
            Action::PreviousSort => "previous-sort",
            Action::ReverseSort => "reverse-sort",
            Action::Refresh => "refresh",
            Action::NextPane => "next-pane",
            Action::Diagnostics => "diagnostics",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::Launch => "launch",
            Action::Log => "log",
            Action::Cancel => "cancel",
            Action::Follow => "follow",
            Action::NextMatch => "next-match",
            Action::PreviousMatch => "previous-match",
            Action::Confirm => "confirm",
            Action::KillBuild => "kill-build",
            Action::Explain => "explain",
            Action::ScrollLeft => "scroll-left",
            Action::ScrollRight => "scroll-right",
            Action::Wrap => "wrap",
            Action::Command => "command",
            Action::Canary => "canary",
            Action::CanaryAll => "canary-all",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// One line for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Up => "select the row above (scroll the detail pane or log when shown)",
            Action::Down => "select the row below (scroll the detail pane or log when shown)",
            Action::Top => "first host",
            Action::Bottom => "last host (in a log: the end, following it again)",
            Action::PageUp => "one page up",
            Action::PageDown => "one page down",
            Action::Detail => "open / close the selected host's detail pane",
            Action::NextPane => "move focus: hosts table, detail pane, jobs",
            Action::Filter => {
                "filter by host, system, feature or status (Enter keeps, Esc clears); in a log: search"
            }
            Action::Back => "clear the filter, close help, diagnostics, the detail pane or the log",
            Action::NextSort => "sort by the next column (the header marks it ▼/▲)",
            Action::PreviousSort => "sort by the previous column",
            Action::ReverseSort => "reverse the sort",
            Action::Refresh => "probe every host now (retries too), recheck caches",
            Action::Diagnostics => "machines file problems, with file:line",
            Action::Help => "this help",
            Action::Quit => {
                "quit (with builds running, asks first, then cancels them; every SSH session closed)"
            }
            Action::Launch => "launch a build (pinned to the selected host, or Nix chooses)",
            Action::Log => "the selected job's or derivation's log (follows new lines)",
            Action::Cancel => "cancel the selected build (again: skip the grace period)",
            Action::Follow => "in a log: follow new lines again",
            Action::NextMatch => "in a log: next search match",
            Action::PreviousMatch => "in a log: previous search match",
            Action::Confirm => "yes, to a question (cancel this build? kill it?)",
            Action::KillBuild => {
                "kill the remote build selected in the detail pane, on its builder (whole process group)"
            }
            Action::Explain => {
                "which machines a derivation may go to, and why not the others (on a job or derivation: that one)"
            }
            Action::ScrollLeft => "in a log: scroll left",
            Action::ScrollRight => "in a log: scroll right, to the rest of long lines",
            Action::Wrap => "in a log: wrap long lines (again: cut them)",
            Action::Command => "a command: sort COLUMN[!], filter WORDS, build WHAT, quit",
            Action::Canary => {
                "canary build on the selected host: can Nix (the daemon, as root) build there?"
            }
            Action::CanaryAll => "canary build on every host that is up, all at once",
        }
    }

    /// Short label for the footer.
    pub fn label(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Detail => "detail",
            Action::Filter => "filter",
            Action::Back => "back",
            Action::NextSort => "sort",
            Action::PreviousSort => "sort back",
            Action::ReverseSort => "reverse",
            Action::Refresh => "refresh",
            Action::NextPane => "pane",
            Action::Diagnostics => "diagnostics",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::Launch => "build",
            Action::Log => "log",
            Action::Cancel => "cancel",
            Action::Follow => "follow",
            Action::NextMatch => "next",
            Action::PreviousMatch => "previous",
            Action::Confirm => "yes",
            Action::KillBuild => "kill build",
            Action::Explain => "explain",
            Action::ScrollLeft => "left",
            Action::ScrollRight => "right",
            Action::Wrap => "wrap",
            Action::Command => "command",
            Action::Canary => "canary",
            Action::CanaryAll => "canary all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
            let parsed: Action = serde_json::from_str(&format!("\"{}\"", action.name())).unwrap();
            assert_eq!(parsed, action);
        }
        assert_eq!(Action::from_name("explode"), None);
    }
}
