//! Text logs that an attacker cannot write into.
//!
//! Many logged values come from outside: login user names, SNS topics, S3 keys, record
//! fields, error texts of remote servers. Written raw, a `\n` in one starts a forged log line
//! (`INFO logged in user=admin`) and an ESC or OSC sequence reaches the operator's terminal.
//! Every field (the message too) is written with its control characters and the Unicode
//! bidirectional overrides escaped; each event stays one line. (The JSON log format escapes
//! by construction.)

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// The field formatter of the text log format: like the default one (the message first,
/// then `name=value`, strings unquoted), with every value escaped.
pub fn escaped_fields() -> EscapedFields {
    EscapedFields
}

pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapingVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> EscapingVisitor<'a> {
        EscapingVisitor { writer, first: true, result: Ok(()) }
    }
}

pub struct EscapingVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        // Fields `tracing-log` adds for `log` records (target, file, line) are not shown.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{}", Escaped(value))
        } else {
            write!(self.writer, "{separator}{}={}", field.name(), Escaped(value))
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// `text` with control characters and bidi overrides as escapes.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() || is_bidi_control(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Characters that reorder how the rest of a line is displayed (U+202A–U+202E,
/// U+2066–U+2069, the marks U+200E/U+200F, U+061C).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(escaped_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_hostile_field_cannot_forge_a_line_or_reach_the_terminal() {
        let name = "bob\n2026-12-05T00:00:00Z  INFO logged in user=admin\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}";
        let text = logged(|| {
            tracing::warn!(user = %name, key = ?name, "failed login for {name}");
        });
        assert_eq!(text.matches('\n').count(), 1, "one event, one line: {text:?}");
        assert!(text.ends_with('\n'));
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'), "{text:?}");
        assert!(text.contains("user=bob\\n2026-12-05T00:00:00Z  INFO logged in user=admin\\u{1b}]0;owned"), "{text}");
        assert!(text.contains("failed login for bob\\n"), "the message is escaped too: {text}");
        // A `?` field (how login logs user names) is quoted and escaped by Debug.
        assert!(text.contains("key=\"bob\\n"), "{text}");
    }

    #[test]
    fn ordinary_fields_read_as_before() {
        let text = logged(|| tracing::info!(account = "prod", objects = 3, "ingested"));
        assert!(text.contains("ingested account=prod objects=3"), "{text}");
    }
}
