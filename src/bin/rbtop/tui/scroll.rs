//! Scrolling arithmetic the panes share, kept apart from drawing so that a
//! frame and the keys after it compute the same window.

/// `value` moved down (or up) by `by`, stopping at 0 and at `u16::MAX`;
/// the view stops it at the end of its text.
pub fn scrolled(value: u16, down: bool, by: u16) -> u16 {
    if down {
        value.saturating_add(by)
    } else {
        value.saturating_sub(by)
    }
}

/// The first row to show of a table of `len` rows, `page` of which fit,
/// so that the `selected` row is on screen: `offset` moved no further than
/// needed, and never past the last full page.
pub fn offset_showing(offset: usize, selected: Option<usize>, page: usize, len: usize) -> usize {
    let page = page.max(1);
    let mut offset = offset;
    if let Some(row) = selected {
        if row < offset {
            offset = row;
        } else if row >= offset + page {
            offset = row + 1 - page;
        }
    }
    offset.min(len.saturating_sub(page))
}
