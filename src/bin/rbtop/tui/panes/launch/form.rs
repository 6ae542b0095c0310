//! The launch form: what to build (typed, split like a shell splits words),
//! where (pinned to the selected host, or Nix choosing among the fleet) and
//! with which command. It only makes a [`LaunchRequest`]; the event loop
//! launches it and reports back an error, which the form then shows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::text_input::{self, TextKey};
use rbtop::jobs::launch::{BuildTool, LaunchRequest, Placement};

#[derive(Clone, Debug, PartialEq)]
pub struct LaunchForm {
    /// The installable, `.nix` file or `.drv` path, then extra arguments.
    pub what: String,
    /// The selected host's placement, when a host was selected.
    pub pinned: Option<Placement>,
    pub fleet: Placement,
    /// Whether the build goes to `pinned` (else Nix chooses).
    pub pin: bool,
    pub tool: BuildTool,
    /// Why the last Enter launched nothing.
    pub error: Option<String>,
    /// Why a build pinned to the selected host may not run there (down,
    /// never answered; later a failing canary): shown while pinned, and
    /// launching there needs a second Enter.
    pub concerns: Vec<String>,
    /// Enter was pressed once with concerns: the next Enter launches.
    pub confirming: bool,
}

/// What a key did to the form.
#[derive(Clone, Debug, PartialEq)]
pub enum FormOutcome {
    /// Still editing.
    Editing,
    Close,
    Submit(LaunchRequest),
    /// Not the form's key (a Ctrl combination): the keymap decides.
    NotMine,
}

impl LaunchForm {
    pub fn new(pinned: Option<Placement>, fleet: Placement, tool: BuildTool) -> LaunchForm {
        LaunchForm {
            what: String::new(),
            pin: pinned.is_some(),
            pinned,
            fleet,
            tool,
            error: None,
            concerns: Vec::new(),
            confirming: false,
        }
    }

    /// The concerns that apply now: those about the pinned host, when pinned.
    pub fn active_concerns(&self) -> &[String] {
        if self.pin && self.pinned.is_some() {
            &self.concerns
        } else {
            &[]
        }
    }

    pub fn placement(&self) -> &Placement {
        match &self.pinned {
            Some(pinned) if self.pin => pinned,
            _ => &self.fleet,
        }
    }

    /// Pinned ↔ Nix chooses; with no host selected there is nothing to pin to.
    pub fn toggle_target(&mut self) {
        self.pin = !self.pin && self.pinned.is_some();
    }

    pub fn next_tool(&mut self) {
        self.tool = self.tool.next();
    }

    /// The request the form describes, or why there is none.
    pub fn request(&self) -> Result<LaunchRequest, String> {
        let args =
            shell_words::split(&self.what).map_err(|e| format!("cannot split the words: {e}"))?;
        if args.is_empty() {
            return Err("type what to build: an installable, a .nix file or a .drv path".into());
        }
        Ok(LaunchRequest {
            args,
            placement: self.placement().clone(),
            tool: self.tool,
        })
    }

    /// Characters are text; Tab toggles the target, Ctrl-N cycles the
    /// command, Enter launches, Esc closes.
    /// With concerns about the pinned host, the first Enter only asks.
    pub fn on_key(&mut self, key: KeyEvent) -> FormOutcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let confirming = std::mem::take(&mut self.confirming);
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => self.toggle_target(),
            KeyCode::Char('n') if ctrl => self.next_tool(),
            _ => match text_input::edit(&mut self.what, key) {
                TextKey::Cancel => return FormOutcome::Close,
                TextKey::Submit => match self.request() {
                    Ok(_) if !confirming && !self.active_concerns().is_empty() => {
                        self.confirming = true;
                    }
                    Ok(request) => return FormOutcome::Submit(request),
                    Err(e) => self.error = Some(e),
                },
                // An edit makes the last error stale.
                TextKey::Edited => self.error = None,
                TextKey::Other => {
                    self.confirming = confirming;
                    return FormOutcome::NotMine;
                }
            },
        }
        FormOutcome::Editing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> Placement {
        Placement::Pinned {
            uri: "ssh://root@b1".into(),
            line: "ssh://root@b1 x86_64-linux - 2 1".into(),
        }
    }

    fn fleet() -> Placement {
        Placement::Fleet {
            builders: Some("@/etc/nix/machines".into()),
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_text(form: &mut LaunchForm, text: &str) {
        for c in text.chars() {
            assert_eq!(form.on_key(key(KeyCode::Char(c))), FormOutcome::Editing);
        }
    }

    #[test]
    fn typed_words_are_split_like_a_shell_and_submitted() {
        let mut form = LaunchForm::new(Some(pinned()), fleet(), BuildTool::NixBuild);
        type_text(&mut form, "x.nix --argstr seed 'a b' --arg lines 3");
        let FormOutcome::Submit(request) = form.on_key(key(KeyCode::Enter)) else {
            panic!("Enter submits a valid form");
        };
        assert_eq!(
            request.args,
            ["x.nix", "--argstr", "seed", "a b", "--arg", "lines", "3"]
        );
        assert_eq!(request.placement, pinned(), "pinned by default with a host");
        assert_eq!(request.tool, BuildTool::NixBuild);
    }

    #[test]
    fn unsplittable_or_empty_text_is_an_error_shown_until_edited() {
        let mut form = LaunchForm::new(None, fleet(), BuildTool::NixBuild);
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Editing);
        assert!(
            form.error
                .as_deref()
                .unwrap()
                .contains("type what to build")
        );
        type_text(&mut form, "x.nix --argstr seed 'open");
        assert_eq!(form.error, None, "typing clears the error");
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Editing);
        assert!(
            form.error.as_deref().unwrap().starts_with("cannot split"),
            "{:?}",
            form.error
        );
        form.on_key(key(KeyCode::Backspace));
        type_text(&mut form, "n'");
        assert!(matches!(
            form.on_key(key(KeyCode::Enter)),
            FormOutcome::Submit(_)
        ));
        let ctrl_u = KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL);
        form.on_key(ctrl_u);
        assert_eq!(form.what, "");
        assert_eq!(form.on_key(key(KeyCode::Esc)), FormOutcome::Close);
    }

    #[test]
    fn a_pinned_host_with_concerns_needs_a_second_enter() {
        let mut form = LaunchForm::new(Some(pinned()), fleet(), BuildTool::NixBuild);
        form.concerns = vec!["b1 is down: refused: Connection refused".into()];
        type_text(&mut form, "x.nix");
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Editing);
        assert!(form.confirming, "the first Enter asks");
        assert!(matches!(
            form.on_key(key(KeyCode::Enter)),
            FormOutcome::Submit(_)
        ));
        // Any other key in between withdraws the confirmation.
        form.on_key(key(KeyCode::Enter));
        type_text(&mut form, " ");
        assert!(!form.confirming);
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Editing);
        // Letting Nix choose: the pinned host's concerns do not apply.
        form.on_key(key(KeyCode::Tab));
        assert!(form.active_concerns().is_empty());
        assert!(matches!(
            form.on_key(key(KeyCode::Enter)),
            FormOutcome::Submit(_)
        ));
    }

    #[test]
    fn tab_toggles_the_target_and_ctrl_n_cycles_the_command() {
        let mut form = LaunchForm::new(Some(pinned()), fleet(), BuildTool::NixBuild);
        assert_eq!(form.placement(), &pinned());
        form.on_key(key(KeyCode::Tab));
        assert_eq!(form.placement(), &fleet());
        form.on_key(key(KeyCode::Tab));
        assert_eq!(form.placement(), &pinned());
        let ctrl_n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL);
        let mut tools = Vec::new();
        for _ in 0..3 {
            form.on_key(ctrl_n);
            tools.push(form.tool);
        }
        assert_eq!(
            tools,
            [
                BuildTool::NixBuildLegacy,
                BuildTool::NixStoreRealise,
                BuildTool::NixBuild
            ]
        );
        assert_eq!(form.what, "", "neither key typed anything");
        // No host selected: only Nix can choose.
        let mut form = LaunchForm::new(None, fleet(), BuildTool::NixBuild);
        form.on_key(key(KeyCode::Tab));
        assert_eq!(form.placement(), &fleet());
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(form.on_key(ctrl_c), FormOutcome::NotMine);
    }
}
