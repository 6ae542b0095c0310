//! A yes/no question ("Cancel this job?") in a box over the body: `y`
//! does what it asked, any other key leaves things alone. Quitting with
//! builds running asks here first, naming them.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect};
use crate::tui::panes::jobs::view::host_label;
use crate::tui::view::parts::boxed;
use crate::tui::view::style;
use rbtop::jobs::runner::lock;

/// A question waiting for its answer, and what a yes does.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// The box's title.
    pub title: &'static str,
    pub question: String,
    /// What yes does, for the footer.
    pub yes: &'static str,
    pub on_yes: AppEffect,
}

impl Prompt {
    /// The question asked before quitting with builds running.
    pub fn is_quit(&self) -> bool {
        self.on_yes == AppEffect::Quit
    }
}

impl App {
    /// `y` does what the prompt asked; any other key leaves things alone.
    /// Asked about quitting, quitting again (`q`, Ctrl-C) is a yes too.
    pub(in crate::tui) fn confirm_key(&mut self, key: KeyEvent) -> AppEffect {
        let Some(prompt) = self.confirm.take() else {
            return AppEffect::None;
        };
        let action = self.keymap.action(&key);
        let yes =
            action == Some(Action::Confirm) || (prompt.is_quit() && action == Some(Action::Quit));
        if !yes {
            return AppEffect::None;
        }
        if prompt.is_quit() {
            self.cancelled_on_quit = self.running_builds();
        }
        if let AppEffect::KillBuild { build, .. } = &prompt.on_yes
            && let Some(drv) = &build.drv
        {
            self.killed_with_k.push(drv.clone());
        }
        prompt.on_yes
    }

    /// Quitting cancels every build still running: with any, ask first
    /// and name them; with none (or already quitting), quit.
    pub(in crate::tui) fn ask_before_quitting(&mut self) -> AppEffect {
        let running = self.running_builds();
        if running.is_empty() || self.shutting_down.is_some() {
            return AppEffect::Quit;
        }
        let question = format!(
            "{} {} running: {}. Quit and cancel {}? y/n",
            running.len(),
            if running.len() == 1 {
                "build is"
            } else {
                "builds are"
            },
            running.join(", "),
            if running.len() == 1 { "it" } else { "them" },
        );
        self.confirm = Some(Prompt {
            title: " Quit ",
            question,
            yes: "cancel them and quit · q again too",
            on_yes: AppEffect::Quit,
        });
        AppEffect::None
    }

    /// `#1 numbered.nix on b1` for each job not yet finished. A log being
    /// read is not a build of ours: quitting stops reading, nothing more.
    fn running_builds(&self) -> Vec<String> {
        self.jobs
            .list
            .iter()
            .filter_map(|handle| {
                let job = lock(handle);
                (job.is_active() && !job.read_only).then(|| {
                    format!(
                        "{} {} on {}",
                        job.id,
                        short_what(&job.request.what()),
                        host_label(&job)
                    )
                })
            })
            .collect()
    }
}

/// A `.nix` or `.drv` file by its name alone, as the jobs pane shows it.
fn short_what(what: &str) -> String {
    let path = std::path::Path::new(what);
    match path.file_name() {
        Some(name) if what.ends_with(".nix") || what.ends_with(".drv") => {
            name.to_string_lossy().into_owned()
        }
        _ => what.to_string(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, prompt: &Prompt) {
    let lines = vec![Line::from(vec![
        Span::raw(" "),
        Span::styled(prompt.question.clone(), style::warning()),
    ])];
    boxed(frame, area, prompt.title, lines);
}
