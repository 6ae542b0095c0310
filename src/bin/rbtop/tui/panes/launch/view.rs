//! The launch form, in a box over the body.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::LaunchForm;
use crate::tui::view::parts::boxed;
use crate::tui::view::style;
use rbtop::jobs::launch::Placement;

pub fn render(frame: &mut Frame, area: Rect, form: &LaunchForm) {
    let label = |text: &str| Span::styled(format!(" {text:<9}"), style::title());
    let hint = |text: String| Span::styled(text, style::dim());
    let target = match form.placement() {
        Placement::Pinned { uri, .. } => format!("pin to {uri}"),
        Placement::Fleet { .. } => "let Nix choose among the fleet".to_string(),
    };
    let mut lines = vec![
        Line::from(vec![
            label("What"),
            Span::raw(form.what.clone()),
            Span::styled("█", style::key()),
        ]),
        Line::from(vec![
            label(""),
            hint("an installable, a .nix file or a .drv path, then extra arguments".into()),
        ]),
        Line::from(vec![
            label("Target"),
            Span::raw(format!("{target}  ")),
            hint(if form.pinned.is_some() {
                "(Tab toggles)".into()
            } else {
                "(no host selected to pin to)".into()
            }),
        ]),
        Line::from(vec![
            label("Command"),
            Span::raw(format!("{}  ", form.tool)),
            hint("(Ctrl-N: next command)".into()),
        ]),
        Line::raw(""),
    ];
    for concern in form.active_concerns() {
        lines.push(Line::from(vec![
            Span::styled(" warning: ", style::warning()),
            Span::raw(concern.clone()),
        ]));
    }
    if form.confirming {
        lines.push(Line::from(vec![
            Span::styled(" Enter", style::key()),
            Span::styled(" again to launch there anyway, ", style::warning()),
            Span::styled("Tab", style::key()),
            Span::styled(" to let Nix choose instead", style::warning()),
        ]));
    }
    if let Some(error) = &form.error {
        lines.push(Line::from(vec![
            Span::styled(" error: ", style::error()),
            Span::raw(error.clone()),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(" Enter", style::key()),
        hint(if form.active_concerns().is_empty() {
            " launch  ".into()
        } else {
            " launch (asks first)  ".into()
        }),
        Span::styled("Esc", style::key()),
        hint(" close  ".into()),
        Span::styled("Ctrl-U", style::key()),
        hint(" erase".into()),
    ]));
    boxed(frame, area, " Launch a build ", lines);
}
