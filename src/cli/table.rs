//! Text laid out for a terminal: columns padded to the width they take on screen (a CJK
//! character takes two cells, which `{:<8}` on a `str` does not know), values from outside made
//! harmless to print, and times to the second in UTC.

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Times as ops read them: to the second, in UTC, saying so. UTC because the database, the JSON
/// and the logs all keep UTC, so a time read here is found as is everywhere else.
pub fn time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(UtcOffset::UTC)
        .format(format)
        .unwrap_or_else(|_| at.to_string())
}

/// `text` fit to print on one line: control characters (a newline in an order's subject) and
/// the marks that reorder text on screen (RTL overrides) shown escaped, as `\u{202e}`.
pub fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` cut to at most `width` cells on screen, ending in `…` when cut: a long subject keeps
/// a list's later columns in view.
pub fn clip(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut clipped = String::new();
    let mut used = 1; // the ellipsis
    for c in text.chars() {
        used += c.width().unwrap_or(0);
        if used > width {
            break;
        }
        clipped.push(c);
    }
    clipped.push('…');
    clipped
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of cells printed in columns, each as wide as its widest cell, separated by `gap`
/// spaces. The last column is not padded (it is where long text goes).
#[derive(Debug, Clone)]
pub struct Table {
    align: Vec<Align>,
    gap: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose columns are aligned as `align` says (a column not named is left-aligned).
    pub fn new(align: &[Align], gap: usize) -> Self {
        Self {
            align: align.to_vec(),
            gap,
            rows: Vec::new(),
        }
    }

    /// Adds a row; its cells are made printable.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows
            .push(cells.into_iter().map(|c| printable(c.as_ref())).collect());
        self
    }

    /// The lines of the table, each starting with `indent`, without trailing spaces.
    pub fn lines(&self, indent: &str) -> Vec<String> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                let cells = self.rows.iter().filter_map(|row| row.get(i));
                cells.map(|c| c.width()).max().unwrap_or(0)
            })
            .collect();
        self.rows
            .iter()
            .map(|row| {
                let mut line = indent.to_owned();
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        line.push_str(&" ".repeat(self.gap));
                    }
                    let fill = " ".repeat(widths[i] - cell.width());
                    let last = i + 1 == columns;
                    match self.align.get(i).copied().unwrap_or(Align::Left) {
                        Align::Right => line.extend([fill.as_str(), cell]),
                        Align::Left if last => line.push_str(cell),
                        Align::Left => line.extend([cell.as_str(), &fill]),
                    }
                }
                line.truncate(line.trim_end().len());
                line
            })
            .collect()
    }

    pub fn print(&self, indent: &str) {
        for line in self.lines(indent) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_on_screen_with_wide_characters() {
        let mut table = Table::new(&[Align::Left, Align::Right], 2);
        table.row(["乌龙茶", "10.00", "x"]);
        table.row(["tea", "2.00", "y"]);

        assert_eq!(table.lines(""), ["乌龙茶  10.00  x", "tea      2.00  y"]);
    }

    #[test]
    fn control_and_reordering_characters_are_shown_escaped() {
        assert_eq!(printable("a\nb\u{202e}c"), "a\\u{a}b\\u{202e}c");
        assert_eq!(printable("乌龙茶"), "乌龙茶");
    }

    #[test]
    fn long_text_is_clipped_to_its_width_on_screen() {
        assert_eq!(clip("Oolong tea", 10), "Oolong tea");
        assert_eq!(clip("Oolong tea, 500 g", 10), "Oolong te…");
        assert_eq!(clip("乌龙茶乌龙茶", 6), "乌龙…");
        assert_eq!(clip("乌龙茶乌龙茶", 6).width(), 5);
    }

    #[test]
    fn times_are_utc_to_the_second() {
        let at = time::macros::datetime!(2026-12-04 02:23:23.811605476 +08:00);
        assert_eq!(time(at), "2026-12-03 18:23:23 UTC");
    }
}
