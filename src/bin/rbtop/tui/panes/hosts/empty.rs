//! No builders: say where rbtop looked, how to add one, and what this
//! machine can build by itself meanwhile.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::view::style;
use rbtop::nixconf::Valued;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let context = &app.context;
    let local = &context.local;
    let mut lines = vec![
        Line::styled("No builders configured.", style::title()),
        Line::raw(""),
        Line::raw("rbtop looked at, in order:"),
    ];
    for place in &context.consulted {
        lines.push(Line::raw(format!("  - {place}")));
    }
    let errors = context.errors();
    if errors > 0 {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(
                format!("{errors} machines line(s) were rejected: "),
                style::error(),
            ),
            Span::raw(format!(
                "press {} to see them with file:line.",
                app.keymap.first_key(Action::Diagnostics)
            )),
        ]));
    }
    lines.extend([
        Line::raw(""),
        Line::raw("To add a builder, put a line such as"),
        Line::styled(
            format!(
                "  ssh://nix@builder.example {} - 4 1 big-parallel",
                local.system.value
            ),
            style::key(),
        ),
        Line::raw(format!(
            "in {} (or set `builders` in nix.conf, or run rbtop --builders '...' / --machines FILE).",
            context.default_machines_file.display()
        )),
        Line::raw(""),
        Line::styled("Meanwhile this machine builds by itself:", style::title()),
    ]);
    let max_jobs = if local.max_jobs.value == "auto" {
        Valued {
            value: format!("auto ({} CPUs)", local.cpus),
            set_at: local.max_jobs.set_at.clone(),
        }
    } else {
        local.max_jobs.clone()
    };
    lines.push(setting("system", &local.system));
    lines.push(setting("extra-platforms", &joined(&local.extra_platforms)));
    lines.push(setting("system-features", &joined(&local.system_features)));
    lines.push(setting("max-jobs", &max_jobs));
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(style::dim())
        .title(Span::styled(" Hosts (0) ", style::title()));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn joined(list: &Valued<Vec<String>>) -> Valued<String> {
    Valued {
        value: if list.value.is_empty() {
            "(none)".to_string()
        } else {
            list.value.join(" ")
        },
        set_at: list.set_at.clone(),
    }
}

fn setting(name: &str, value: &Valued<String>) -> Line<'static> {
    let origin = match &value.set_at {
        Some(at) => format!("  ({at})"),
        None => "  (Nix's default)".to_string(),
    };
    Line::from(vec![
        Span::styled(format!("  {name:<17}"), style::dim()),
        Span::raw(value.value.clone()),
        Span::styled(origin, style::dim()),
    ])
}
