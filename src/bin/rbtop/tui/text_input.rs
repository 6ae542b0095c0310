//! One line of typed text (the filter, the log search, the launch form's
//! "What"): the keys that edit it, the same everywhere.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKey {
    /// The text changed (typed, erased).
    Edited,
    /// Enter.
    Submit,
    /// Esc.
    Cancel,
    /// Not an editing key: arrows, Tab, Ctrl combinations; the caller decides.
    Other,
}

/// Characters are typed, Backspace erases one, Ctrl-U all.
pub fn edit(text: &mut String, key: KeyEvent) -> TextKey {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Esc => return TextKey::Cancel,
        KeyCode::Enter => return TextKey::Submit,
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char(c) if !ctrl && !alt => text.push(c),
        _ => return TextKey::Other,
    }
    TextKey::Edited
}
