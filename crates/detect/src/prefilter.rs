//! A necessary condition checked on a record's raw JSON before it is parsed: text that must
//! appear in it for a rule to match (a value's longest literal, or the field's key). Rules
//! the index cannot narrow by `eventName`/`eventSource` (errorCode-based ones, root use) are
//! then skipped for most records without parsing them. The text is ASCII-lowercased into a
//! reused buffer and each needle is a SIMD substring search (memchr's memmem): on CloudTrail
//! records that is ~6× faster than a case-insensitive Aho-Corasick pass.
//!
//! Sound only for text JSON writes verbatim: needles are printable ASCII without `"`, `\` or
//! `/`, and a record containing a `\u` escape (which could spell any key or value) skips the
//! prefilter altogether.

use std::cell::RefCell;

use memchr::memmem::Finder;

/// Whether JSON writes `s` as is inside a string or key (no escape could stand for it).
pub fn verbatim(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && b != b'/')
}

#[derive(Debug, Clone, Default)]
pub struct Prefilter {
    /// Lower-case needles.
    finders: Vec<Finder<'static>>,
    /// For each needle, the rules it lets through.
    rules_of: Vec<Vec<usize>>,
    /// Rules that have needles (the others always pass).
    filtered: Vec<bool>,
}

thread_local! {
    /// The lower-cased record, reused across records.
    static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Rules (by index) whose needles a text contains.
pub type Found = smallvec::SmallVec<[u64; 4]>;

impl Prefilter {
    /// `needles[i]`: rule i's needles, any one of which must appear (`None`: always passes).
    pub fn build(needles: &[Option<Vec<String>>]) -> Prefilter {
        let mut all: Vec<String> = Vec::new();
        let mut rules_of: Vec<Vec<usize>> = Vec::new();
        let mut filtered = vec![false; needles.len()];
        for (rule, list) in needles.iter().enumerate() {
            let Some(list) = list else { continue };
            filtered[rule] = true;
            for n in list {
                let n = n.to_ascii_lowercase();
                match all.iter().position(|x| *x == n) {
                    Some(at) => rules_of[at].push(rule),
                    None => {
                        all.push(n);
                        rules_of.push(vec![rule]);
                    }
                }
            }
        }
        let finders = all.iter().map(|n| Finder::new(n.as_bytes()).into_owned()).collect();
        Prefilter { finders, rules_of, filtered }
    }

    pub fn is_filtered(&self, rule: usize) -> bool {
        self.filtered.get(rule).copied().unwrap_or(false)
    }

    /// The rules whose needles `text` contains; `None` when the text cannot be judged (it
    /// has `\u` escapes), so every rule passes.
    pub fn scan(&self, text: &str) -> Option<Found> {
        if self.finders.is_empty() || memchr::memmem::find(text.as_bytes(), b"\\u").is_some() {
            return None;
        }
        let mut found: Found = smallvec::smallvec![0; self.filtered.len().div_ceil(64)];
        LOWER.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.extend_from_slice(text.as_bytes());
            buf.make_ascii_lowercase();
            for (finder, rules) in self.finders.iter().zip(&self.rules_of) {
                if finder.find(&buf).is_some() {
                    for &r in rules {
                        found[r / 64] |= 1 << (r % 64);
                    }
                }
            }
        });
        Some(found)
    }

    /// Whether rule `i` passes given `found`.
    pub fn passes(&self, found: &Option<Found>, rule: usize) -> bool {
        match found {
            Some(f) if self.is_filtered(rule) => f[rule / 64] & (1 << (rule % 64)) != 0,
            _ => true,
        }
    }
}
