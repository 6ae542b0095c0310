//! Keys on the launch form: it takes typed text; what it submits goes to
//! the event loop as [`AppEffect::Launch`].

use crossterm::event::KeyEvent;

use super::{FormOutcome, LaunchForm};
use crate::tui::app::{App, AppEffect};

impl App {
    pub(in crate::tui) fn open_launch_form(&mut self) {
        let pinned = self
            .selected
            .map(|i| rbtop::jobs::launch::Placement::pinned(&self.fleet.hosts[i].machine));
        let defaults = &self.jobs.defaults;
        self.editing_filter = false;
        let mut form = LaunchForm::new(pinned, defaults.fleet.clone(), defaults.tool);
        form.concerns = self
            .selected
            .map(|i| self.fleet.hosts[i].launch_concerns())
            .unwrap_or_default();
        self.form = Some(form);
    }

    pub(in crate::tui) fn form_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(form) = &mut self.form else {
            return AppEffect::None;
        };
        match form.on_key(key) {
            FormOutcome::Editing => AppEffect::None,
            FormOutcome::Close => {
                self.form = None;
                AppEffect::None
            }
            // Quitting stops launching.
            FormOutcome::Submit(_) if self.shutting_down.is_some() => {
                form.error = Some("rbtop is quitting: no new builds".into());
                AppEffect::None
            }
            FormOutcome::Submit(request) => AppEffect::Launch(request),
            FormOutcome::NotMine => self.quit_only(&key),
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use super::*;
    use crate::tui::app::Focus;
    use crate::tui::fixture::{self, key, press, running_job};
    use crate::tui::panes::jobs::state::JobRow;
    use rbtop::jobs::job::JobId;

    #[test]
    fn b_opens_the_form_pinned_to_the_selected_host_and_enter_launches() {
        let mut app = fixture::mixed_fleet();
        press(&mut app, "j"); // b2
        press(&mut app, "b");
        let form = app.form.as_ref().expect("b opens the launch form");
        assert_eq!(form.placement().host(), Some("ssh://root@b2"));
        // While the form is open, letters are text: `q` does not quit.
        let effects = press(&mut app, "q.nix");
        assert!(effects.iter().all(|e| *e == AppEffect::None), "{effects:?}");
        app.on_key(key(KeyCode::Tab));
        let effect = app.on_key(key(KeyCode::Enter));
        let AppEffect::Launch(request) = effect else {
            panic!("Enter launches: {effect:?}");
        };
        assert_eq!(request.args, ["q.nix"]);
        assert_eq!(
            request.placement, app.jobs.defaults.fleet,
            "Tab: Nix chooses"
        );
        // The launch failed: the error is in the form, which stays open.
        app.launched(Err("nix-store --realise builds .drv paths only".into()));
        let form = app.form.as_ref().expect("the form stays open");
        assert!(form.error.as_deref().unwrap().contains(".drv paths only"));
        // It worked: the new job is selected in the focused jobs pane.
        app.launched(Ok(running_job(7, 3)));
        assert_eq!(app.form, None);
        assert_eq!(app.focus, Focus::Jobs);
        assert_eq!(
            app.jobs.selected,
            Some(JobRow {
                job: JobId(7),
                drv: None
            })
        );
        // Esc closes a form without launching.
        press(&mut app, "b");
        assert_eq!(app.on_key(key(KeyCode::Esc)), AppEffect::None);
        assert_eq!(app.form, None);
    }
}
