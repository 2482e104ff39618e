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

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_shown_escaped_not_sent_to_the_terminal() {
        assert_eq!(
            escape_controls("title \u{1b}]0;PWNED\u{7}\u{1b}[2J\u{9b}x\tend\n"),
            "title \\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\u{9b}x\tend\n"
        );
    }
}
