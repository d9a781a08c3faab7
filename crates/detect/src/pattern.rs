//! Sigma string values: `*` matches any run of characters, `?` exactly one, and a backslash
//! escapes a wildcard or a backslash (`\*`, `\?`, `\\`); before any other character it is a
//! plain backslash. Matching is case-insensitive unless the rule says `|cased`.

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// `?`
    One,
    /// `*`
    Any,
}

/// A compiled string pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pieces: Vec<Piece>,
    cased: bool,
    /// No wildcard at all: an equality test.
    plain: Option<String>,
    /// Every literal is ASCII: an ASCII text can be compared without folding it first.
    ascii: bool,
}

/// Splits a Sigma string into literal text and wildcards.
pub fn parse(value: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                let w = if c == '*' { Piece::Any } else { Piece::One };
                // `**` is one `*`.
                if !(w == Piece::Any && pieces.last() == Some(&Piece::Any)) {
                    pieces.push(w);
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    pieces
}

/// Escapes text so that it matches only itself as a Sigma string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn fold(s: &str, cased: bool) -> String {
    if cased {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

impl Pattern {
    pub fn new(pieces: Vec<Piece>, cased: bool) -> Pattern {
        let pieces: Vec<Piece> = pieces
            .into_iter()
            .map(|p| match p {
                Piece::Lit(l) => Piece::Lit(fold(&l, cased)),
                other => other,
            })
            .collect();
        let plain = match pieces.as_slice() {
            [] => Some(String::new()),
            [Piece::Lit(l)] => Some(l.clone()),
            _ => None,
        };
        let ascii = pieces.iter().all(|p| match p {
            Piece::Lit(l) => l.is_ascii(),
            _ => true,
        });
        Pattern { pieces, cased, plain, ascii }
    }

    /// `contains`: `*value*`; `startswith`: `value*`; `endswith`: `*value`.
    pub fn wrapped(mut pieces: Vec<Piece>, before: bool, after: bool, cased: bool) -> Pattern {
        if before && pieces.first() != Some(&Piece::Any) {
            pieces.insert(0, Piece::Any);
        }
        if after && pieces.last() != Some(&Piece::Any) {
            pieces.push(Piece::Any);
        }
        Pattern::new(pieces, cased)
    }

    /// The folded text this pattern equals exactly, when it has no wildcard and ignores case.
    pub fn exact_folded(&self) -> Option<&str> {
        self.plain.as_deref().filter(|_| !self.cased)
    }

    pub fn matches(&self, text: &str) -> bool {
        // The common case, without allocating: ASCII text against an ASCII pattern. `?` must
        // see characters, so wildcard patterns take this path only for ASCII text too.
        if self.ascii && text.is_ascii() {
            let fold = |b: u8| if self.cased { b } else { b.to_ascii_lowercase() };
            if let Some(p) = &self.plain {
                return p.len() == text.len() && p.bytes().zip(text.bytes()).all(|(a, b)| a == fold(b));
            }
            return glob_bytes(&self.pieces, text.as_bytes(), fold);
        }
        let folded;
        let text = if self.cased {
            text
        } else {
            folded = text.to_lowercase();
            &folded
        };
        if let Some(p) = &self.plain {
            return p == text;
        }
        glob(&self.pieces, text)
    }
}

/// [`glob`] over ASCII bytes, folding the text's bytes with `fold` (literals are folded already).
fn glob_bytes(pieces: &[Piece], t: &[u8], fold: impl Fn(u8) -> u8) -> bool {
    // Tokens: a literal byte, or 256 = `?`, 257 = `*`.
    const ONE: u16 = 256;
    const ANY: u16 = 257;
    let mut p: smallvec::SmallVec<[u16; 64]> = smallvec::SmallVec::new();
    for piece in pieces {
        match piece {
            Piece::Lit(l) => p.extend(l.bytes().map(u16::from)),
            Piece::One => p.push(ONE),
            Piece::Any => p.push(ANY),
        }
    }
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi).copied() {
            Some(ANY) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(ONE) => {
                ti += 1;
                pi += 1;
            }
            Some(c) if c == u16::from(fold(t[ti])) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == ANY)
}

/// Wildcard matching with the classic single backtrack point for `*` (linear in practice).
fn glob(pieces: &[Piece], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    // Expand literals into characters for a simple char-level matcher.
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        C(char),
        One,
        Any,
    }
    let p: Vec<Tok> = pieces
        .iter()
        .flat_map(|piece| match piece {
            Piece::Lit(l) => l.chars().map(Tok::C).collect::<Vec<_>>(),
            Piece::One => vec![Tok::One],
            Piece::Any => vec![Tok::Any],
        })
        .collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Tok::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::One) => {
                ti += 1;
                pi += 1;
            }
            Some(Tok::C(c)) if *c == t[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == Tok::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(parse(pattern), false).matches(text)
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(m("Stop*", "StopLogging"));
        assert!(m("stop*", "STOPLOGGING"));
        assert!(m("*Log*", "StopLogging"));
        assert!(m("Stop?ogging", "StopLogging"));
        assert!(!m("Stop?ogging", "StopLLogging"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\?b", "a?b"));
        assert!(!m("a\\?b", "axb"));
        assert!(m("c:\\\\windows", "c:\\windows"));
        assert!(m("c:\\windows", "c:\\windows")); // a backslash before a plain char is itself
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*a*a*a*", "aaa"));
        assert!(!Pattern::new(parse("Stop*"), true).matches("stoplogging"));
        assert_eq!(escape("a*b?c\\d"), "a\\*b\\?c\\\\d");
        assert!(m(&escape("a*b?c\\d"), "a*b?c\\d"));
        assert!(!m(&escape("a*b"), "axxb"));
    }

    proptest::proptest! {
        /// The allocation-free ASCII path agrees with folding whole strings.
        #[test]
        fn ascii_fast_path_agrees(pattern in "[aAbB*?\\\\]{0,8}", text in "[aAbB*?]{0,10}", cased: bool) {
            let p = Pattern::new(parse(&pattern), cased);
            let slow = if cased { text.clone() } else { text.to_lowercase() };
            let expected = match &p.plain { Some(pl) => *pl == slow, None => glob(&p.pieces, &slow) };
            proptest::prop_assert_eq!(p.matches(&text), expected);
        }
    }

    #[test]
    fn wrapping() {
        let c = Pattern::wrapped(parse("log"), true, true, false);
        assert!(c.matches("StopLogging") && !c.matches("Stop"));
        let s = Pattern::wrapped(parse("stop"), false, true, false);
        assert!(s.matches("StopLogging") && !s.matches("xStop"));
        let e = Pattern::wrapped(parse("ging"), true, false, false);
        assert!(e.matches("StopLogging") && !e.matches("Loggingx"));
    }
}
