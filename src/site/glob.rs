//! Path globs for the configuration file's rules, matched against a normalised request
//! path with its leading `/` (`/assets/app.js`, `/` for the root).
//!
//! Matching fills a table of "the tokens from here on match the path from here on",
//! backwards, one row per token: time and memory are linear in the path for a given
//! pattern, whatever the path holds (no backtracking to blow up on a hostile 8 KiB path).
//!
//! When several ways to match exist, each wildcard from the left takes the longest bytes
//! that still let the rest of the pattern match (greedy, as shells and regexes do): `/*-*`
//! on `/a-b-c` captures `a-b` and `c`; in `{..}` the first alternative written that lets
//! the rest match wins.

use std::ops::Range;

#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    /// Starts with `/`: matched against the whole path; otherwise against its last segment.
    anchored: bool,
    tokens: Vec<Token>,
    /// The alternatives of every `{..}`, as ranges of `source`; `Token::OneOf` indexes here.
    alternatives: Vec<Range<usize>>,
}

#[derive(Debug, Clone)]
enum Token {
    /// Bytes of `source`, matched as they are.
    Literal(Range<usize>),
    /// `*`: any bytes but `/`, possibly none.
    Star,
    /// `**` ending the pattern: any bytes, possibly none.
    AnyBytes,
    /// `**/`: no bytes, or any ending in `/` (that `/` not captured), so that `/**/a`
    /// matches `/a` as well as `/x/y/a`.
    Dirs,
    /// `?`: one byte but `/`.
    Byte,
    /// `{a,b}`: the alternatives in this range of `alternatives`.
    OneOf(Range<usize>),
}

impl Glob {
    /// Patterns that start with `/` match the whole path; others (`*.woff2`) match the last
    /// segment only, and so may not contain `/`. `*` matches any bytes but `/` (possibly
    /// none, so `/*` matches the root `/`), `**` any bytes including `/` and must be a
    /// whole segment (`/assets/**` matches `/assets/a` and `/assets/a/b`, not `/assets`;
    /// `/**/a` matches `/a` too), `?` one byte but `/`, `{a,b,c}` one of the alternatives
    /// (which may not contain `/`, `*`, `?` or `{`). Everything else is literal.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        let bytes = pattern.as_bytes();
        let Some(&first) = bytes.first() else { return Err("empty pattern".to_string()) };
        let anchored = first == b'/';
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                0 => return Err(format!("NUL at byte {i}")),
                b'\\' => return Err(format!("backslash at byte {i}")),
                b'/' if !anchored => {
                    return Err(format!(
                        "/ at byte {i} in a pattern that does not start with / (it matches the last segment only)"
                    ));
                }
                _ => {}
            }
        }
        let (mut tokens, mut alternatives) = (Vec::new(), Vec::new());
        let (mut i, mut literal_from) = (0, 0);
        while i < bytes.len() {
            let (token, next) = match bytes[i] {
                b'?' => (Token::Byte, i + 1),
                b'*' => double_star(bytes, i)?.unwrap_or((Token::Star, i + 1)),
                b'{' => braces(bytes, i, &mut alternatives)?,
                b'}' => return Err(format!("unmatched }} at byte {i}")),
                _ => {
                    i += 1;
                    continue;
                }
            };
            if literal_from < i {
                tokens.push(Token::Literal(literal_from..i));
            }
            tokens.push(token);
            i = next;
            literal_from = next;
        }
        if literal_from < bytes.len() {
            tokens.push(Token::Literal(literal_from..bytes.len()));
        }
        Ok(Glob { source: pattern.to_string(), anchored, tokens, alternatives })
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        let (subject, _) = self.subject(path);
        match self.tokens.as_slice() {
            [Token::Literal(r)] => subject == &self.source.as_bytes()[r.clone()],
            _ => self.could_match(subject) && self.table(subject).get(0, 0),
        }
    }

    /// Like `matches`, filling `captures` with the byte ranges of `path` each wildcard
    /// (`*`, `**`, `?`, `{..}`) matched, in order; `$1` is the first. Ambiguities are
    /// settled greedily (see the module's comment).
    pub fn captures(&self, path: &[u8], captures: &mut Vec<Range<usize>>) -> bool {
        captures.clear();
        let (subject, offset) = self.subject(path);
        if !self.could_match(subject) {
            return false;
        }
        let table = self.table(subject);
        if !table.get(0, 0) {
            return false;
        }
        let mut at = 0;
        for (t, token) in self.tokens.iter().enumerate() {
            let rest_matches = |end: usize| table.get(t + 1, end);
            let (end, captured) = match token {
                Token::Literal(r) => (at + r.len(), None),
                Token::Byte => (at + 1, Some(at..at + 1)),
                Token::Star => {
                    let run = subject[at..].iter().position(|&b| b == b'/').map_or(subject.len(), |i| at + i);
                    let end = (at..=run).rev().find(|&e| rest_matches(e)).expect("the table said it matches");
                    (end, Some(at..end))
                }
                Token::AnyBytes => {
                    let end = (at..=subject.len()).rev().find(|&e| rest_matches(e)).expect("the table said it matches");
                    (end, Some(at..end))
                }
                Token::Dirs => {
                    let longest = (at + 1..=subject.len()).rev().find(|&e| subject[e - 1] == b'/' && rest_matches(e));
                    match longest {
                        Some(end) => (end, Some(at..end - 1)),
                        None => (at, Some(at..at)),
                    }
                }
                Token::OneOf(alts) => {
                    let end_of = |a: usize| at + self.alternatives[a].len();
                    let chosen = alts.clone().find(|&a| self.alternative_at(a, subject, at) && rest_matches(end_of(a)));
                    let end = end_of(chosen.expect("the table said it matches"));
                    (end, Some(at..end))
                }
            };
            if let Some(c) = captured {
                captures.push(c.start + offset..c.end + offset);
            }
            at = end;
        }
        true
    }

    pub fn wildcards(&self) -> usize {
        self.tokens.iter().filter(|t| !matches!(t, Token::Literal(_))).count()
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The bytes this glob is matched against, and where they start in the path.
    fn subject<'p>(&self, path: &'p [u8]) -> (&'p [u8], usize) {
        if self.anchored {
            return (path, 0);
        }
        let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        (&path[start..], start)
    }

    /// Whether the literal bytes that open and close the pattern are there: most rules
    /// miss most paths, and this tells them so before a table is allocated.
    fn could_match(&self, subject: &[u8]) -> bool {
        let literal = |t: Option<&Token>| match t {
            Some(Token::Literal(r)) => &self.source.as_bytes()[r.clone()],
            _ => &[][..],
        };
        subject.starts_with(literal(self.tokens.first())) && subject.ends_with(literal(self.tokens.last()))
    }

    fn alternative_at(&self, alternative: usize, subject: &[u8], at: usize) -> bool {
        let bytes = &self.source.as_bytes()[self.alternatives[alternative].clone()];
        subject[at..].starts_with(bytes)
    }

    /// Row `t`, column `p`: tokens `t..` match `subject[p..]`. Filled from the last token
    /// and the last byte backwards, each cell from cells already filled.
    fn table(&self, subject: &[u8]) -> Table {
        let n = subject.len();
        let mut table = Table::new(self.tokens.len() + 1, n + 1);
        table.set(self.tokens.len(), n);
        for (t, token) in self.tokens.iter().enumerate().rev() {
            // Dirs: some end `e > p` with `subject[e - 1] == b'/'` lets the rest match.
            let mut dirs_reach = false;
            for p in (0..=n).rev() {
                let next = |end: usize| end <= n && table.get(t + 1, end);
                let byte = subject.get(p).copied();
                let matched = match token {
                    Token::Literal(r) => {
                        subject[p..].starts_with(&self.source.as_bytes()[r.clone()]) && next(p + r.len())
                    }
                    Token::Byte => byte.is_some_and(|b| b != b'/') && next(p + 1),
                    Token::Star => next(p) || byte.is_some_and(|b| b != b'/') && table.get(t, p + 1),
                    Token::AnyBytes => next(p) || byte.is_some() && table.get(t, p + 1),
                    Token::Dirs => {
                        dirs_reach |= byte == Some(b'/') && next(p + 1);
                        next(p) || dirs_reach
                    }
                    Token::OneOf(alts) => {
                        alts.clone().any(|a| self.alternative_at(a, subject, p) && next(p + self.alternatives[a].len()))
                    }
                };
                if matched {
                    table.set(t, p);
                }
            }
        }
        table
    }
}

/// `**` at `at`: `Ok(None)` when it is a lone `*`, else the token and where it ends.
fn double_star(bytes: &[u8], at: usize) -> Result<Option<(Token, usize)>, String> {
    if bytes.get(at + 1) != Some(&b'*') {
        return Ok(None);
    }
    if bytes.get(at + 2) == Some(&b'*') {
        return Err(format!("*** at byte {at}"));
    }
    let starts_segment = at == 0 || bytes[at - 1] == b'/';
    match bytes.get(at + 2) {
        _ if !starts_segment => Err(format!("** at byte {at} is not a whole segment (write /a/**/b or /a/**)")),
        None => Ok(Some((Token::AnyBytes, at + 2))),
        Some(b'/') => Ok(Some((Token::Dirs, at + 3))),
        Some(_) => Err(format!("** at byte {at} is not a whole segment (write /a/**/b or /a/**)")),
    }
}

/// `{a,b}` opening at `open`: the token and where it ends.
fn braces(bytes: &[u8], open: usize, alternatives: &mut Vec<Range<usize>>) -> Result<(Token, usize), String> {
    let first = alternatives.len();
    let mut from = open + 1;
    for (i, &b) in bytes.iter().enumerate().skip(open + 1) {
        match b {
            b'{' => return Err(format!("nested {{ at byte {i}")),
            b'/' | b'*' | b'?' => return Err(format!("{} inside {{..}} at byte {i}", b as char)),
            b',' | b'}' => {
                alternatives.push(from..i);
                from = i + 1;
                if b == b'}' {
                    return Ok((Token::OneOf(first..alternatives.len()), i + 1));
                }
            }
            _ => {}
        }
    }
    Err(format!("unclosed {{ at byte {open}"))
}

/// A bit per (token, position).
struct Table {
    bits: Vec<u64>,
    stride: usize,
}

impl Table {
    fn new(rows: usize, columns: usize) -> Table {
        let stride = columns.div_ceil(64);
        Table { bits: vec![0; rows * stride], stride }
    }

    fn get(&self, row: usize, column: usize) -> bool {
        self.bits[row * self.stride + column / 64] >> (column % 64) & 1 == 1
    }

    fn set(&mut self, row: usize, column: usize) {
        self.bits[row * self.stride + column / 64] |= 1 << (column % 64);
    }
}

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;
