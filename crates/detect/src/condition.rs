//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of X`, `all of X` (X a search
//! name, a pattern with `*`, or `them`). Precedence: `not` binds tightest, then `and`, then
//! `or`. `them` means every search except those whose name starts with `_`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Search(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// Always true / false (e.g. `1 of sel*` with no matching search cannot occur: that is an
    /// error at load time; these are for completeness).
    Const(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    And,
    Or,
    Not,
    Open,
    Close,
    OneOf,
    AllOf,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            out.push(Tok::Open);
            chars.next();
        } else if c == ')' {
            out.push(Tok::Close);
            chars.next();
        } else if c == '|' {
            return Err("aggregations after `|` (count() by …) are Sigma v1 syntax; write a correlation rule".into());
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '(' || c == ')' || c == '|' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            match word.to_ascii_lowercase().as_str() {
                "and" => out.push(Tok::And),
                "or" => out.push(Tok::Or),
                "not" => out.push(Tok::Not),
                "of" => match out.pop() {
                    Some(Tok::Ident(n)) if n == "1" || n.eq_ignore_ascii_case("any") => out.push(Tok::OneOf),
                    Some(Tok::Ident(n)) if n.eq_ignore_ascii_case("all") => out.push(Tok::AllOf),
                    _ => return Err("`of` must follow `1` or `all`".into()),
                },
                _ => out.push(Tok::Ident(word)),
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'a [String],
}

/// Parses `text` against the rule's search names (their order gives `Cond::Search` indices).
pub fn parse(text: &str, names: &[String]) -> Result<Cond, String> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err("empty condition".into());
    }
    let mut p = Parser { toks, pos: 0, names };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} at token {}", p.toks[p.pos], p.pos + 1));
    }
    Ok(c)
}

fn glob_names<'n>(pattern: &str, names: &'n [String]) -> Vec<(usize, &'n String)> {
    let p = crate::pattern::Pattern::new(crate::pattern::parse(pattern), true);
    names.iter().enumerate().filter(|(_, n)| p.matches(n)).collect()
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one") } else { Cond::Or(items) })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one") } else { Cond::And(items) })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::Open) => {
                let c = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(c),
                    _ => Err("missing `)`".into()),
                }
            }
            Some(Tok::Ident(name)) => match self.names.iter().position(|n| *n == name) {
                Some(i) => Ok(Cond::Search(i)),
                None => Err(format!("condition names {name:?}, which is not a search of this rule")),
            },
            Some(t @ (Tok::OneOf | Tok::AllOf)) => {
                let target = match self.next() {
                    Some(Tok::Ident(t)) => t,
                    _ => return Err("`1 of` / `all of` needs a search name, a pattern or `them`".into()),
                };
                let chosen: Vec<Cond> = if target == "them" {
                    self.names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| !n.starts_with('_'))
                        .map(|(i, _)| Cond::Search(i))
                        .collect()
                } else {
                    glob_names(&target, self.names).into_iter().map(|(i, _)| Cond::Search(i)).collect()
                };
                if chosen.is_empty() {
                    return Err(format!("`of {target}` matches no search of this rule"));
                }
                Ok(if t == Tok::OneOf { Cond::Or(chosen) } else { Cond::And(chosen) })
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("condition ends too early".into()),
        }
    }
}

impl Cond {
    /// The same condition over searches numbered from `offset` (a filter's searches are
    /// appended after the rule's own).
    pub fn shifted(&self, offset: usize) -> Cond {
        match self {
            Cond::Search(i) => Cond::Search(i + offset),
            Cond::Not(c) => Cond::Not(Box::new(c.shifted(offset))),
            Cond::And(cs) => Cond::And(cs.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Or(cs) => Cond::Or(cs.iter().map(|c| c.shifted(offset)).collect()),
            Cond::Const(b) => Cond::Const(*b),
        }
    }

    /// A necessary condition: the values a field must take for this condition to hold,
    /// given each search's requirement (`None`: unconstrained).
    pub fn required(&self, search: &dyn Fn(usize) -> Option<Vec<String>>) -> Option<Vec<String>> {
        match self {
            Cond::Search(i) => search(*i),
            // Any one constrained conjunct is a necessary condition; take the narrowest.
            Cond::And(cs) => cs.iter().filter_map(|c| c.required(search)).min_by_key(Vec::len),
            Cond::Or(cs) => {
                let mut all = Vec::new();
                for c in cs {
                    all.extend(c.required(search)?);
                }
                Some(all)
            }
            Cond::Not(_) | Cond::Const(_) => None,
        }
    }

    pub fn eval(&self, search: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Search(i) => search(*i),
            Cond::Not(c) => !c.eval(search),
            Cond::And(cs) => cs.iter().all(|c| c.eval(search)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(search)),
            Cond::Const(b) => *b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn eval(cond: &str, ns: &[&str], truth: &[bool]) -> bool {
        parse(cond, &names(ns)).unwrap().eval(&mut |i| truth[i])
    }

    #[test]
    fn precedence_and_parentheses() {
        let ns = ["a", "b", "c"];
        // not > and > or
        assert!(eval("a or b and c", &ns, &[true, false, false]));
        assert!(!eval("(a or b) and c", &ns, &[true, false, false]));
        assert!(eval("not a and b", &ns, &[false, true, false]));
        assert!(!eval("not (a or b)", &ns, &[false, true, false]));
        assert!(eval("a and not b", &ns, &[true, false, true]));
        assert!(eval("A AND NOT b", &["A", "b"], &[true, false]));
    }

    #[test]
    fn of_forms() {
        let ns = ["selection_a", "selection_b", "filter_x", "_hidden"];
        assert!(eval("1 of selection_*", &ns, &[false, true, false, false]));
        assert!(!eval("all of selection_*", &ns, &[false, true, false, false]));
        assert!(eval("all of selection_* and not 1 of filter*", &ns, &[true, true, false, false]));
        assert!(!eval("1 of them", &ns, &[false, false, false, true])); // _hidden is not in `them`
        assert!(eval("all of them", &ns, &[true, true, true, false]));
        assert!(eval("any of selection_*", &ns, &[true, false, false, false]));
    }

    #[test]
    fn errors() {
        let ns = names(&["a"]);
        assert!(parse("b", &ns).unwrap_err().contains("not a search"));
        assert!(parse("1 of z*", &ns).unwrap_err().contains("matches no search"));
        assert!(parse("a | count() > 5", &ns).unwrap_err().contains("correlation"));
        assert!(parse("(a", &ns).is_err());
        assert!(parse("a and", &ns).is_err());
        assert!(parse("", &ns).is_err());
    }
}
