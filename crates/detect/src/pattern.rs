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
    cased: bool,
    /// No wildcard at all: an equality test.
    plain: Option<String>,
    /// The pattern as characters (literals folded unless cased).
    chars: Vec<Tok<char>>,
    /// The same as bytes when every literal is ASCII: an ASCII text is then compared
    /// without folding (or copying) it first.
    bytes: Option<Vec<Tok<u8>>>,
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
        let chars = tokens(&pieces, |l| l.chars().collect());
        let bytes = ascii.then(|| tokens(&pieces, |l| l.bytes().collect()));
        Pattern { cased, plain, chars, bytes }
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

    /// The longest run of literal characters (every match contains it).
    pub fn longest_literal(&self) -> String {
        let mut best = String::new();
        let mut run = String::new();
        for t in &self.chars {
            match t {
                Tok::C(c) => run.push(*c),
                _ => {
                    if run.len() > best.len() {
                        best = std::mem::take(&mut run);
                    }
                    run.clear();
                }
            }
        }
        if run.len() > best.len() {
            best = run;
        }
        best
    }

    pub fn matches(&self, text: &str) -> bool {
        // The common case, without allocating: ASCII text against an ASCII pattern. `?` must
        // see characters, so wildcard patterns take this path only for ASCII text too.
        if let Some(bytes) = self.bytes.as_deref().filter(|_| text.is_ascii()) {
            let fold = |b: u8| if self.cased { b } else { b.to_ascii_lowercase() };
            if let Some(p) = &self.plain {
                return p.len() == text.len() && p.bytes().zip(text.bytes()).all(|(a, b)| a == fold(b));
            }
            return glob_with(bytes, text.as_bytes(), |c, b| c == fold(b));
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
        let t: Vec<char> = text.chars().collect();
        glob_with(&self.chars, &t, |c, x| c == x)
    }
}

/// A pattern token: one literal unit (a char or a byte), `?` or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<C> {
    C(C),
    One,
    Any,
}

fn tokens<C>(pieces: &[Piece], units: impl Fn(&str) -> Vec<C>) -> Vec<Tok<C>> {
    let mut p = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Lit(l) => p.extend(units(l).into_iter().map(Tok::C)),
            Piece::One => p.push(Tok::One),
            Piece::Any => p.push(Tok::Any),
        }
    }
    p
}

/// Wildcard matching with the classic single backtrack point for `*` (linear in practice):
/// `eq` says whether a literal unit of the pattern matches one of the text.
fn glob_with<C: Copy, T: Copy>(p: &[Tok<C>], t: &[T], eq: impl Fn(C, T) -> bool) -> bool {
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
            Some(Tok::C(c)) if eq(*c, t[ti]) => {
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
    p[pi..].iter().all(|t| matches!(t, Tok::Any))
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
            let t: Vec<char> = slow.chars().collect();
            let expected = match &p.plain { Some(pl) => *pl == slow, None => glob_with(&p.chars, &t, |c, x| c == x) };
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
