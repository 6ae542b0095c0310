//! Keys and the mouse on help and the diagnostics: they scroll, switch
//! between the two, and anything else closes them, as in htop.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::Overlay;
use crate::tui::action::Action;
use crate::tui::app::{App, AppEffect};
use crate::tui::scroll::scrolled;

impl App {
    pub(in crate::tui) fn open(&mut self, overlay: Overlay) {
        // The overlay takes the keyboard; the filter typed so far stays.
        self.editing_filter = false;
        self.overlay = Some(overlay);
        self.overlay_scroll = 0;
    }

    pub(in crate::tui) fn update_overlay(&mut self, overlay: Overlay, action: Action) -> AppEffect {
        match action {
            Action::Quit => return AppEffect::Quit,
            Action::Down => self.overlay_scroll = scrolled(self.overlay_scroll, true, 1),
            Action::Up => self.overlay_scroll = scrolled(self.overlay_scroll, false, 1),
            Action::PageDown => self.overlay_scroll = scrolled(self.overlay_scroll, true, 10),
            Action::PageUp => self.overlay_scroll = scrolled(self.overlay_scroll, false, 10),
            Action::Top => self.overlay_scroll = 0,
            Action::Help if overlay != Overlay::Help => self.open(Overlay::Help),
            Action::Diagnostics if overlay != Overlay::Diagnostics => {
                self.open(Overlay::Diagnostics)
            }
            // Any other key closes it, as in htop.
            _ => self.overlay = None,
        }
        AppEffect::None
    }

    /// A click closes the overlay, the wheel scrolls it.
    pub(in crate::tui) fn overlay_mouse(&mut self, mouse: MouseEvent) -> bool {
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => self.overlay = None,
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = mouse.kind == MouseEventKind::ScrollDown;
                self.overlay_scroll = scrolled(self.overlay_scroll, down, 3);
            }
            _ => return false,
        }
        true
    }
}
