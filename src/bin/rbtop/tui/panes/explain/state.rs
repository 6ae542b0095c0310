//! The dashboard's explain pane: a line typed by the operator (a system and
//! features, or a `.drv` path), and the explanation of it, kept current as
//! probes and slot readings arrive. It only holds state; the explainer
//! ([`rbtop::explain`]) does the judging and `view` the drawing.

use crossterm::event::{KeyCode, KeyEvent};

use crate::tui::text_input::{self, TextKey};
use rbtop::dashboard::FleetState;
use rbtop::explain::{
    Explanation, Inputs, Observed, Query, Reachability, Requirement, Subject, explain,
};
use rbtop::nix_version::NixVersion;
use rbtop::nixconf::LocalCapacity;

/// What a key did to the pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneKey {
    /// Handled: draw again.
    Stay,
    /// Esc: close the pane.
    Close,
    /// Not the pane's key (a Ctrl combination): the keymap decides.
    NotMine,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExplainPane {
    /// The line being typed.
    pub input: String,
    /// The requirement of the last line run (a `.drv` is read once, on Enter).
    asked: Option<(Requirement, Subject)>,
    /// The last explanation, or why the last line could not be explained.
    pub result: Option<Result<Explanation, String>>,
    /// Rows the result is scrolled by; each frame stops it at the end.
    pub scroll: u16,
    /// The local Nix, which decides the ranking's arithmetic.
    nix_version: Option<NixVersion>,
}

impl ExplainPane {
    /// An empty pane; `nix_version` is [`NixVersion::local`], read once.
    pub fn new(nix_version: Option<NixVersion>) -> ExplainPane {
        ExplainPane {
            input: String::new(),
            asked: None,
            result: None,
            scroll: 0,
            nix_version,
        }
    }

    /// Typing edits the line, Enter explains it, Up/Down/PageUp/PageDown
    /// scroll the result, Esc closes.
    pub fn on_key(&mut self, key: KeyEvent, fleet: &FleetState, local: &LocalCapacity) -> PaneKey {
        match key.code {
            KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down => self.scroll = self.scroll.saturating_add(1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            _ => match text_input::edit(&mut self.input, key) {
                TextKey::Cancel => return PaneKey::Close,
                TextKey::Submit => self.submit(fleet, local),
                TextKey::Edited => {}
                TextKey::Other => return PaneKey::NotMine,
            },
        }
        PaneKey::Stay
    }

    /// Explain the typed line (reading its `.drv`, if it names one).
    pub fn submit(&mut self, fleet: &FleetState, local: &LocalCapacity) {
        self.scroll = 0;
        match Query::parse(&self.input).and_then(|query| query.resolve()) {
            Ok(asked) => {
                self.asked = Some(asked);
                self.refresh(fleet, local);
            }
            Err(e) => {
                self.asked = None;
                self.result = Some(Err(e));
            }
        }
    }

    /// Explain the last line again with the fleet as it is now: call it
    /// after a probe result or a slots reading while the pane is open.
    pub fn refresh(&mut self, fleet: &FleetState, local: &LocalCapacity) {
        let Some((requirement, subject)) = self.asked.clone() else {
            return;
        };
        let machines: Vec<_> = fleet.hosts.iter().map(|h| h.machine.clone()).collect();
        let (observed, slots_problem) = observations(fleet);
        self.result = Some(Ok(explain(Inputs {
            requirement,
            subject,
            machines: &machines,
            observed,
            slots_problem,
            local,
            nix_version: self.nix_version,
        })));
    }
}

/// What the dashboard knows of each host: its latest probe and its slots.
pub fn observations(fleet: &FleetState) -> (Vec<Observed>, Option<String>) {
    let observed = fleet
        .hosts
        .iter()
        .map(|host| Observed {
            reachability: host.report.as_ref().map_or_else(
                || Reachability::unknown("probing: no answer yet"),
                Reachability::of,
            ),
            busy: host.busy_slots(),
        })
        .collect();
    let problem = fleet.load_problem.clone().or_else(|| {
        fleet
            .hosts
            .iter()
            .any(|host| host.load.is_none())
            .then(|| "not read yet".to_string())
    });
    (observed, problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;
    use rbtop::dashboard::Stamp;
    use rbtop::explain::testing::{local, machines, slots};
    use rbtop::explain::{Availability, HookAnswer};
    use rbtop::probe::{HostReport, ProbeEvent, Status, Via};
    use rbtop::slots::LocalLoad;

    fn fleet() -> FleetState {
        FleetState::new(
            machines("ssh://a x86_64-linux - 1 1\nssh://b aarch64-linux - 2 1"),
            std::time::Duration::from_secs(5),
        )
    }

    fn type_line(pane: &mut ExplainPane, text: &str, fleet: &FleetState) {
        for c in text.chars() {
            pane.on_key(
                KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                fleet,
                &local(),
            );
        }
    }

    fn key(pane: &mut ExplainPane, code: KeyCode, fleet: &FleetState) -> PaneKey {
        pane.on_key(KeyEvent::new(code, KeyModifiers::NONE), fleet, &local())
    }

    fn explanation(pane: &ExplainPane) -> &Explanation {
        pane.result.as_ref().unwrap().as_ref().unwrap()
    }

    #[test]
    fn a_typed_line_is_explained_on_enter_and_kept_current() {
        let mut fleet = fleet();
        let mut pane = ExplainPane::new(None);
        type_line(&mut pane, "x86_64-linux", &fleet);
        assert_eq!(pane.result, None, "nothing before Enter");
        assert_eq!(key(&mut pane, KeyCode::Enter, &fleet), PaneKey::Stay);
        let e = explanation(&pane);
        assert_eq!(e.machines[0].reachability.name(), "unknown");
        assert_eq!(e.slots_problem.as_deref(), Some("not read yet"));
        assert_eq!(e.outcome.action, HookAnswer::Remote { machine: 0 });

        // The slots fill up and the host answers: the same line, new facts.
        fleet.apply_load(LocalLoad::Readable {
            machines: vec![slots(1, 1), slots(0, 2)],
        });
        fleet.apply(
            ProbeEvent {
                index: 0,
                report: HostReport::failed(Status::Timeout, Via::Ssh, "no answer"),
                elapsed: std::time::Duration::ZERO,
            },
            Stamp::now(),
        );
        pane.refresh(&fleet, &local());
        let e = explanation(&pane);
        assert_eq!(e.machines[0].availability, Availability::Full);
        assert_eq!(e.machines[0].reachability.name(), "timeout");
        assert_eq!(e.slots_problem, None);
        assert_eq!(e.outcome.action, HookAnswer::DeclineBuildHere);
    }

    #[test]
    fn a_bad_line_shows_why_and_esc_closes() {
        let fleet = fleet();
        let mut pane = ExplainPane::new(None);
        type_line(&mut pane, "/nonexistent/x.drv", &fleet);
        key(&mut pane, KeyCode::Enter, &fleet);
        let error = pane.result.clone().unwrap().unwrap_err();
        assert!(
            error.starts_with("cannot read /nonexistent/x.drv: "),
            "{error}"
        );
        // A failed line is not refreshed into an old success.
        pane.refresh(&fleet, &local());
        assert!(pane.result.as_ref().unwrap().is_err());
        assert_eq!(key(&mut pane, KeyCode::Esc, &fleet), PaneKey::Close);
    }

    #[test]
    fn arrows_scroll_and_ctrl_keys_are_not_the_panes() {
        let fleet = fleet();
        let mut pane = ExplainPane::new(None);
        key(&mut pane, KeyCode::Down, &fleet);
        key(&mut pane, KeyCode::PageDown, &fleet);
        assert_eq!(pane.scroll, 11);
        key(&mut pane, KeyCode::PageUp, &fleet);
        key(&mut pane, KeyCode::Up, &fleet);
        key(&mut pane, KeyCode::Up, &fleet);
        assert_eq!(pane.scroll, 0);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(pane.on_key(ctrl_c, &fleet, &local()), PaneKey::NotMine);
        assert!(pane.input.is_empty(), "typed keys edit, j/k are text here");
    }
}
