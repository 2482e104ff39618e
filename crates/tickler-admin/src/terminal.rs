//! Writing the CLI's human output to a terminal: every client of the admin socket (the
//! binary, a family's subcommands) prints through [`write_stdout`], usually with [`crate::out!`].

use std::io::Write;

/// Writes one line to stdout with its control characters escaped; ends the program quietly when
/// stdout is closed (`tickler history … | head`) instead of panicking.
pub fn write_stdout(line: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    // Values stored before control characters were refused (or an entity id, which may hold
    // any printable text) must not drive the operator's terminal: escape every control
    // character but line breaks and tabs. (JSON output has none: serde_json escapes them.)
    let text = escape_controls(&line.to_string());
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
    {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {err}");
        std::process::exit(1);
    }
}

/// `text` with each control character other than a line break or a tab written as `\u{..}`.
pub fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            escaped.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// `println!` through [`write_stdout`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::terminal::write_stdout(format_args!($($arg)*))
    };
}

/// A reply value as a table cell: a string as it is, `null` as `-`, anything else as JSON.
pub fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A table for the terminal: borders only, cells wrapped to fit the width the output has
/// ([`output_width`]) rather than rows as wide as their longest value.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if let Some(width) = output_width() {
        table.set_width(width);
    }
    if !header.is_empty() {
        table.set_header(header.iter().copied());
    }
    table
}

/// Keeps a column at least `width` characters wide when the table has to shrink (an id, or
/// an instant's date, wraps there rather than mid-word); the other columns give way first.
pub fn column_min(table: &mut comfy_table::Table, index: usize, width: u16) {
    if let Some(column) = table.column_mut(index) {
        column.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
            comfy_table::Width::Fixed(width),
        ));
    }
}

/// The width output is fitted to, set once by the program (which reads `COLUMNS` and asks the
/// terminal: this crate reads no environment); none: whole rows, as for a pipe.
static OUTPUT_WIDTH: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();

/// Sets the width every table and long line is fitted to (the first call wins).
pub fn set_output_width(width: Option<u16>) {
    let _ = OUTPUT_WIDTH.set(width.filter(|columns| *columns >= 20));
}

/// The width to fit output to, as the program set it.
pub fn output_width() -> Option<u16> {
    OUTPUT_WIDTH.get().copied().flatten()
}

/// The terminal's width when stdout is one.
pub fn terminal_width() -> Option<u16> {
    comfy_table::Table::new().width()
}

/// An instant for a table cell, `2026-12-15 04:00` (seconds only when not zero, no
/// milliseconds), so that a narrow column wraps it at the space; another value as [`cell`].
pub fn instant_cell(value: &serde_json::Value) -> String {
    let Some(at) = value
        .as_str()
        .and_then(|text| tickler_core::Timestamp::parse(text).ok())
    else {
        return cell(value);
    };
    let at = at.to_chrono();
    if chrono::Timelike::second(&at) == 0 {
        at.format("%Y-%m-%d %H:%M").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// `text` wrapped at spaces to `width` columns when the output has one: the first line starts
/// with `first`, the others with `rest` (a hanging indent). A word longer than a line stays
/// whole on a line of its own.
pub fn wrap(text: &str, first: &str, rest: &str) -> Vec<String> {
    let Some(width) = output_width().map(usize::from) else {
        return vec![format!("{first}{text}")];
    };
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split(' ') {
        let needed = line.chars().count() + usize::from(!empty) + word.chars().count();
        if !empty && needed > width {
            lines.push(std::mem::replace(&mut line, rest.to_owned()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

/// `text` cut to at most `max` characters, with `…` where it was cut: long errors fit a table
/// cell (`--json` has them whole).
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// A count of each name in first-seen order: `created, 16 × occurrence-planned`.
pub fn summarise<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match counts.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
        .iter()
        .map(|(name, count)| match count {
            1 => (*name).to_owned(),
            n => format!("{n} × {name}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A byte count in binary units: `512 B`, `12.5 KiB`, `3.0 MiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{count} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// A duration in milliseconds in the largest unit that keeps it readable: `3 ms`, `4.2 s`,
/// `2 min 5 s`, `3 h 12 min`, `2 d 4 h`.
pub fn millis(ms: u64) -> String {
    let seconds = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", seconds / 60, seconds % 60),
        3_600_000..86_400_000 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_event_names_are_counted() {
        let names = [
            "created",
            "occurrence-planned",
            "occurrence-planned",
            "completed",
        ];
        assert_eq!(
            summarise(names),
            "created, 2 × occurrence-planned, completed"
        );
    }

    #[test]
    fn sizes_and_durations_read_in_human_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(524_288), "512.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(millis(3), "3 ms");
        assert_eq!(millis(4_200), "4.2 s");
        assert_eq!(millis(125_000), "2 min 5 s");
        assert_eq!(millis(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a long error message", 8), "a long …");
    }

    #[test]
    fn control_characters_are_shown_escaped_not_sent_to_the_terminal() {
        assert_eq!(
            escape_controls("title \u{1b}]0;PWNED\u{7}\u{1b}[2J\u{9b}x\tend\n"),
            "title \\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\u{9b}x\tend\n"
        );
    }
}
