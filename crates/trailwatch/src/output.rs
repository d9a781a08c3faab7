//! Output formats, and escaping of attacker-controlled text for terminals and TSV.
//!
//! Every CloudTrail field can be chosen by an attacker (a user agent, a session name, a
//! bucket key). Printed raw, such a value could move the cursor, rewrite earlier lines or
//! flip text direction in an operator's terminal, or add columns to a TSV. So: terminal
//! output escapes control and bidi characters; TSV escapes tab, newline, CR and backslash.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One JSON value per line.
    Jsonl,
    /// Tab-separated values, no header.
    Tsv,
}

/// Escapes what would act on a terminal rather than print: C0/C1 controls, DEL, and the
/// Unicode bidirectional overrides and isolates.
pub fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A TSV field: `\t`, `\n`, `\r` and `\\` become backslash escapes (the PostgreSQL text
/// format convention), other controls are escaped as for terminals.
pub fn tsv_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push_str(&terminal_safe(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

/// One TSV line of `cells`, each escaped with [`tsv_field`] (no line end).
pub fn tsv_row<S: AsRef<str>>(cells: &[S]) -> String {
    cells.iter().map(|c| tsv_field(c.as_ref())).collect::<Vec<_>>().join("\t")
}

/// A record's JSON on one line. JSON strings cannot hold raw newlines, so any line break in
/// the text is whitespace between tokens and can become a space without changing the value.
pub fn one_line_json(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.contains(['\n', '\r']) {
        std::borrow::Cow::Owned(raw.replace(['\n', '\r'], " "))
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// Prints rows as aligned columns; cells are made terminal-safe and cut at `max` chars.
pub fn table(headers: &[&str], rows: &[Vec<String>], max: usize) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| {
                    let safe = terminal_safe(c);
                    if safe.chars().count() > max {
                        let cut: String = safe.chars().take(max.saturating_sub(1)).collect();
                        format!("{cut}…")
                    } else {
                        safe
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cols: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        for (i, c) in cols.enumerate() {
            if !first {
                out.push_str("  ");
            }
            first = false;
            let pad = widths[i].saturating_sub(c.chars().count());
            out.push_str(c);
            if i + 1 < widths.len() {
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, &mut headers.iter().copied());
    for r in &cells {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(terminal_safe("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(terminal_safe("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(terminal_safe("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn tsv_fields_cannot_add_columns_or_rows() {
        assert_eq!(tsv_field("a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
    }

    proptest! {
        #[test]
        fn no_tsv_field_contains_a_separator_or_control(s in "\\PC*|[\\t\\n\\r\\x1b\\\\a-z]*") {
            let f = tsv_field(&s);
            prop_assert!(!f.contains(['\t', '\n', '\r', '\x1b']));
        }

        #[test]
        fn one_line_json_keeps_the_value(v in "[ \\n\\r]{0,3}") {
            let raw = format!("{{{v}\"a\"{v}:{v}[1,{v}\"x\\ny\"]{v}}}");
            let line = one_line_json(&raw);
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), serde_json::from_str::<serde_json::Value>(&raw).unwrap());
        }
    }
}
