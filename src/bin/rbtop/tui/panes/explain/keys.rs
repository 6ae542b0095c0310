//! Opening the explainer and its keys: typed characters are its line, as
//! in the launch form; only quitting gets past it.

use crossterm::event::KeyEvent;

use super::{ExplainPane, PaneKey};
use crate::tui::app::{App, AppEffect};

impl App {
    /// `e`: the explainer, its line prefilled with the selected host's first
    /// system, ready to be edited or replaced by a `.drv` path.
    pub(in crate::tui) fn open_explain(&mut self) {
        self.editing_filter = false;
        let mut pane = ExplainPane::new(self.nix_version);
        if let Some(system) = self
            .selected
            .and_then(|i| self.fleet.hosts.get(i))
            .and_then(|h| h.machine.systems.first())
        {
            pane.input = system.clone();
        }
        self.explain = Some(pane);
    }

    /// Explain `drv` at once (`e` on a job, a derivation or a remote build).
    pub(in crate::tui) fn explain_drv(&mut self, drv: &str) {
        self.editing_filter = false;
        let mut pane = ExplainPane::new(self.nix_version);
        pane.input = drv.to_string();
        pane.submit(&self.fleet, &self.context.local);
        self.explain = Some(pane);
    }

    /// Typed characters are the pane's text, as in the launch form.
    pub(in crate::tui) fn explain_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(pane) = &mut self.explain else {
            return AppEffect::None;
        };
        match pane.on_key(key, &self.fleet, &self.context.local) {
            PaneKey::Stay => AppEffect::None,
            PaneKey::Close => {
                self.explain = None;
                AppEffect::None
            }
            PaneKey::NotMine => self.quit_only(&key),
        }
    }

    /// Re-rank the open explanation with the latest probes and slots.
    pub(in crate::tui) fn refresh_explain(&mut self) {
        if let Some(pane) = &mut self.explain {
            pane.refresh(&self.fleet, &self.context.local);
        }
    }
}
