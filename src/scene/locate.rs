//! A small, lenient RON outliner that maps field paths to source positions and back.
//!
//! It knows nothing about the schema: it tokenises RON (strings, raw strings, chars, nested
//! block comments, line comments, `#![enable(..)]` attributes), follows the nesting of `(`,
//! `[` and `{`, and records one [`Entry`] per struct field and list element, keyed by its
//! path (`forward.tau.min`, `script[0].samples`). A named body such as
//! `graph: Layered(cardinality: 6)` is one level under `graph`, so its field is
//! `graph.cardinality`. On malformed input it stops at the first token it cannot place and
//! keeps what it recorded so far; unfinished entries extend to the end of the text.

use std::fmt;
use std::ops::Range;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A struct field or enum-variant field.
    Field(String),
    /// A list element.
    Index(usize),
}

/// A field path; displays as `a.b[2].c`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// Parses `a.b[2].c`; `None` if it is not of that shape.
    pub fn parse(text: &str) -> Option<FieldPath> {
        let mut segs = Vec::new();
        if text.is_empty() {
            return Some(FieldPath(segs));
        }
        for part in text.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !is_ident(name) {
                return None;
            }
            segs.push(Seg::Field(name.to_string()));
            while !rest.is_empty() {
                let close = rest.find(']')?;
                let index = rest.get(1..close)?.parse().ok()?;
                segs.push(Seg::Index(index));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return None;
                }
            }
        }
        Some(FieldPath(segs))
    }

    /// Whether `self` starts with all of `prefix`.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Whether the path has a list index in it.
    pub fn has_index(&self) -> bool {
        self.0.iter().any(|s| matches!(s, Seg::Index(_)))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Field(name) if i == 0 => f.write_str(name)?,
                Seg::Field(name) => write!(f, ".{name}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The shape of a recorded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A number, string, char, or a bare identifier (`true`, `None`, `Linear`).
    Atom,
    /// `( .. )` or `Name( .. )` with `field: value` entries (or empty).
    Struct,
    /// `( .. )` or `Name( .. )` with positional items, e.g. `Some(7)`.
    Tuple,
    /// `[ .. ]`.
    List,
    /// `{ .. }`.
    Map,
}

/// A recorded struct field, list element or the top-level value.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Where the value sits.
    pub path: FieldPath,
    /// Byte range of the field name, for struct fields.
    pub key: Option<Range<usize>>,
    /// Byte range of the value (to the end of the text if the value never closed).
    pub value: Range<usize>,
    /// The value's shape.
    pub shape: Shape,
    /// The leading identifier of the value (`Layered` in `Layered(..)`, `Linear`, `true`).
    pub name: Option<String>,
    /// Whether the value was complete; an unfinished one extends through the end of the text.
    pub closed: bool,
}

impl Entry {
    /// Where the entry begins: its key if it has one, else its value.
    pub fn start(&self) -> usize {
        self.key.as_ref().map_or(self.value.start, |k| k.start)
    }
}

/// All entries of a text, in source order (parents before children).
#[derive(Clone, Debug)]
pub(crate) struct Outline {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Byte offset of the first token the outliner could not place, if any.
    pub stopped_at: Option<usize>,
}

impl Outline {
    /// Outlines `text`.
    pub fn of(text: &str) -> Outline {
        let tokens = tokenize(text);
        let mut parser = Parser {
            text,
            tokens: &tokens,
            pos: 0,
            entries: Vec::new(),
        };
        let stopped_at = parser.top().err();
        Outline {
            entries: parser.entries,
            stopped_at,
        }
    }

    /// The entry at exactly `path`.
    pub fn find(&self, path: &FieldPath) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.path == path)
    }

    /// The deepest entry whose extent (key through value) contains byte `offset`.
    pub fn deepest_at(&self, offset: usize) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.start() <= offset && (offset < e.value.end || !e.closed))
            .max_by_key(|e| e.path.0.len())
    }

    /// The field names directly under `path`, in source order.
    pub fn children(&self, path: &FieldPath) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.path.0.len() == path.0.len() + 1 && e.path.starts_with(path))
            .filter_map(|e| match e.path.0.last() {
                Some(Seg::Field(name)) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The longest prefix of `path` that has an entry (the top-level value at worst).
    pub fn nearest(&self, path: &FieldPath) -> Option<&Entry> {
        (0..=path.0.len())
            .rev()
            .find_map(|n| self.find(&FieldPath(path.0[..n].to_vec())))
    }
}

/// 1-based line and column (in characters) of byte `offset`, as ron counts them.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = 1 + before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, 1 + before[line_start..].chars().count())
}

/// Byte offset of a 1-based line and column (in characters); clamps to the text.
pub(crate) fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for _ in 1..line {
        match text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[offset..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let within = rest[..line_len]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line_len, |(i, _)| i);
    offset + within
}

/// Moves `offset` forward over whitespace and comments to the next token (or the end).
pub(crate) fn skip_trivia(text: &str, offset: usize) -> usize {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: floor_char_boundary(text, offset.min(text.len())),
    };
    lexer.skip_trivia();
    lexer.pos
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Open(u8),
    Close(u8),
    Comma,
    Colon,
    Hash,
    Ident,
    Literal,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'/'), Some(b'/')) => {
                    self.pos = self.text[self.pos..]
                        .find('\n')
                        .map_or(self.text.len(), |i| self.pos + i);
                }
                (Some(b'/'), Some(b'*')) => {
                    self.pos += 2;
                    let mut depth = 1;
                    while depth > 0 && self.pos < self.bytes.len() {
                        match (self.peek(0), self.peek(1)) {
                            (Some(b'/'), Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (Some(b'*'), Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                }
                (Some(_), _) if self.rest().starts_with('\u{feff}') => self.pos += 3,
                (Some(_), _) if self.rest().starts_with(char::is_whitespace) => {
                    self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
                }
                _ => return,
            }
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    /// Consumes a quoted string whose opening quote is at `self.pos`.
    fn quoted(&mut self, quote: u8) {
        self.pos += 1;
        while let Some(b) = self.peek(0) {
            self.pos += 1;
            if b == b'\\' {
                self.pos += 1;
            } else if b == quote {
                break;
            }
        }
        self.pos = self.pos.min(self.bytes.len());
    }

    /// Consumes `r#*"..."#*` starting at the `r`.
    fn raw_string(&mut self) {
        self.pos += 1;
        let mut hashes = 0;
        while self.peek(0) == Some(b'#') {
            hashes += 1;
            self.pos += 1;
        }
        self.pos += 1; // the opening quote
        let closing = format!("\"{}", "#".repeat(hashes));
        self.pos = self.text[self.pos.min(self.text.len())..]
            .find(&closing)
            .map_or(self.text.len(), |i| self.pos + i + closing.len());
    }

    /// Whether `r` at `self.pos + at` starts a raw string (`r"`, `r#"`, `r##"`...).
    fn raw_string_ahead(&self, at: usize) -> bool {
        let mut i = at + 1;
        while self.peek(i) == Some(b'#') {
            i += 1;
        }
        self.peek(i) == Some(b'"')
    }

    fn ident_like(&mut self) {
        let len = self
            .rest()
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(self.rest().len(), |(i, _)| i);
        self.pos += len.max(1);
    }

    fn number(&mut self) {
        let mut prev = 0u8;
        let mut first = true;
        while let Some(b) = self.peek(0) {
            let sign_ok = (b == b'+' || b == b'-') && (first || matches!(prev, b'e' | b'E'));
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || sign_ok {
                prev = b;
                first = false;
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn next(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let b = self.peek(0)?;
        let kind = match b {
            b'(' | b'[' | b'{' => {
                self.pos += 1;
                Tok::Open(b)
            }
            b')' | b']' | b'}' => {
                self.pos += 1;
                Tok::Close(b)
            }
            b',' => {
                self.pos += 1;
                Tok::Comma
            }
            b':' => {
                self.pos += 1;
                Tok::Colon
            }
            b'#' => {
                self.pos += 1;
                Tok::Hash
            }
            b'"' => {
                self.quoted(b'"');
                Tok::Literal
            }
            b'\'' => {
                self.quoted(b'\'');
                Tok::Literal
            }
            b'b' if self.peek(1) == Some(b'"') => {
                self.pos += 1;
                self.quoted(b'"');
                Tok::Literal
            }
            b'b' if self.peek(1) == Some(b'\'') => {
                self.pos += 1;
                self.quoted(b'\'');
                Tok::Literal
            }
            b'b' if self.peek(1) == Some(b'r') && self.raw_string_ahead(1) => {
                self.pos += 1;
                self.raw_string();
                Tok::Literal
            }
            b'r' if self.raw_string_ahead(0) => {
                self.raw_string();
                Tok::Literal
            }
            b'r' if self.peek(1) == Some(b'#') => {
                self.pos += 2;
                self.ident_like();
                Tok::Ident
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                self.number();
                Tok::Literal
            }
            _ if self
                .rest()
                .starts_with(|c: char| c.is_alphabetic() || c == '_') =>
            {
                self.ident_like();
                Tok::Ident
            }
            _ => {
                self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
                Tok::Other
            }
        };
        Some(Token {
            kind,
            start,
            end: self.pos.min(self.bytes.len()),
        })
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    std::iter::from_fn(|| lexer.next()).collect()
}

/// Recursive descent over the tokens; `Err(offset)` where it could not go on.
struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    pos: usize,
    entries: Vec<Entry>,
}

type Step = Result<(), usize>;

impl Parser<'_> {
    fn peek(&self, ahead: usize) -> Option<Token> {
        self.tokens.get(self.pos + ahead).copied()
    }

    fn here(&self) -> usize {
        self.peek(0).map_or(self.text.len(), |t| t.start)
    }

    fn expect(&mut self, kind: Tok) -> Result<Token, usize> {
        match self.peek(0) {
            Some(t) if t.kind == kind => {
                self.pos += 1;
                Ok(t)
            }
            _ => Err(self.here()),
        }
    }

    fn top(&mut self) -> Step {
        // `#![enable(...)]` attributes.
        while self.peek(0).map(|t| t.kind) == Some(Tok::Hash) {
            self.pos += 1;
            let mut depth = 0usize;
            loop {
                let t = self.peek(0).ok_or(self.text.len())?;
                self.pos += 1;
                match t.kind {
                    Tok::Open(b'[') => depth += 1,
                    Tok::Close(b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        self.value(FieldPath::default(), None)?;
        match self.peek(0) {
            None => Ok(()),
            Some(t) => Err(t.start),
        }
    }

    /// Parses one value at `path`, recording an entry for it.
    fn value(&mut self, path: FieldPath, key: Option<Range<usize>>) -> Step {
        let first = self.peek(0).ok_or(self.text.len())?;
        let index = self.entries.len();
        self.entries.push(Entry {
            path: path.clone(),
            key,
            value: first.start..self.text.len(),
            shape: Shape::Atom,
            name: None,
            closed: false,
        });
        let (shape, name) = match first.kind {
            Tok::Ident => {
                self.pos += 1;
                let name = self.text[first.start..first.end].to_string();
                if self.peek(0).map(|t| t.kind) == Some(Tok::Open(b'(')) {
                    self.pos += 1;
                    let transparent = name == "Some";
                    (self.paren_body(&path, index, transparent)?, Some(name))
                } else {
                    (Shape::Atom, Some(name))
                }
            }
            Tok::Literal => {
                self.pos += 1;
                (Shape::Atom, None)
            }
            Tok::Open(b'(') => {
                self.pos += 1;
                (self.paren_body(&path, index, false)?, None)
            }
            Tok::Open(b'[') => {
                self.pos += 1;
                self.entries[index].shape = Shape::List;
                self.list_body(&path)?;
                (Shape::List, None)
            }
            Tok::Open(_) => {
                self.pos += 1;
                self.entries[index].shape = Shape::Map;
                self.map_body(&path)?;
                (Shape::Map, None)
            }
            _ => return Err(first.start),
        };
        let last = self.tokens[self.pos - 1];
        let entry = &mut self.entries[index];
        entry.value.end = last.end;
        entry.shape = shape;
        entry.name = name;
        entry.closed = true;
        Ok(())
    }

    /// After `(`: either `field: value, ...` or `value, ...`, then `)`. With `transparent`
    /// (the body of `Some(..)`), the fields inside a positional item are kept at `path`, so
    /// `x: Some((steps: 8))` records `x.steps` as `x: (steps: 8)` does.
    fn paren_body(
        &mut self,
        path: &FieldPath,
        index: usize,
        transparent: bool,
    ) -> Result<Shape, usize> {
        let is_struct = matches!(
            (self.peek(0).map(|t| t.kind), self.peek(1).map(|t| t.kind)),
            (Some(Tok::Ident), Some(Tok::Colon)) | (Some(Tok::Close(b')')), _)
        );
        self.entries[index].shape = if is_struct {
            Shape::Struct
        } else {
            Shape::Tuple
        };
        loop {
            if self.peek(0).map(|t| t.kind) == Some(Tok::Close(b')')) {
                self.pos += 1;
                break;
            }
            if is_struct {
                let key = self.expect(Tok::Ident)?;
                self.expect(Tok::Colon)?;
                let mut name = &self.text[key.start..key.end];
                name = name.strip_prefix("r#").unwrap_or(name);
                let mut child = path.clone();
                child.0.push(Seg::Field(name.to_string()));
                self.value(child, Some(key.start..key.end))?;
            } else {
                // Positional items (`Some(7)`) stay at the same path and are not recorded.
                let before = self.entries.len();
                self.value(path.clone(), None)?;
                if transparent && self.entries.len() > before {
                    self.entries.remove(before);
                } else {
                    self.entries.truncate(before);
                }
            }
            match self.peek(0).map(|t| t.kind) {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Close(b')')) => {}
                _ => return Err(self.here()),
            }
        }
        Ok(if is_struct {
            Shape::Struct
        } else {
            Shape::Tuple
        })
    }

    fn list_body(&mut self, path: &FieldPath) -> Step {
        let mut i = 0;
        loop {
            if self.peek(0).map(|t| t.kind) == Some(Tok::Close(b']')) {
                self.pos += 1;
                return Ok(());
            }
            let mut child = path.clone();
            child.0.push(Seg::Index(i));
            self.value(child, None)?;
            i += 1;
            match self.peek(0).map(|t| t.kind) {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Close(b']')) => {}
                _ => return Err(self.here()),
            }
        }
    }

    fn map_body(&mut self, path: &FieldPath) -> Step {
        loop {
            if self.peek(0).map(|t| t.kind) == Some(Tok::Close(b'}')) {
                self.pos += 1;
                return Ok(());
            }
            let before = self.entries.len();
            self.value(path.clone(), None)?;
            self.expect(Tok::Colon)?;
            self.value(path.clone(), None)?;
            self.entries.truncate(before);
            match self.peek(0).map(|t| t.kind) {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Close(b'}')) => {}
                _ => return Err(self.here()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    const TEXT: &str = r##"#![enable(implicit_some)]
// a comment with ( and "
(
    name: "a ) b", /* nested /* block */ comment ( */
    graph: Layered(cardinality: 6, layers: 4),
    raw: r#"x " ) "#,
    chr: ')',
    opt: Some(7),
    script: [Evaluate(split: Test), Evaluate(split: Train, samples: 3)],
    enc: Explicit(phase: [[1, 2], [3, 4]]),
    unit: Linear,
)
"##;

    #[test]
    fn finds_paths_and_positions() {
        let o = Outline::of(TEXT);
        assert_eq!(o.stopped_at, None);
        let at = |path: &str| {
            let e = o.find(&p(path)).unwrap_or_else(|| panic!("{path}"));
            line_col(TEXT, e.start())
        };
        assert_eq!(at(""), (3, 1));
        assert_eq!(at("name"), (4, 5));
        assert_eq!(at("graph"), (5, 5));
        assert_eq!(at("graph.layers"), (5, 36));
        assert_eq!(at("raw"), (6, 5));
        assert_eq!(at("chr"), (7, 5));
        assert_eq!(at("opt"), (8, 5));
        assert_eq!(at("script[1].samples"), (9, 60));
        assert_eq!(at("enc.phase[1][0]"), (10, 36));
        assert_eq!(
            o.find(&p("graph")).unwrap().name.as_deref(),
            Some("Layered")
        );
        assert_eq!(o.find(&p("unit")).unwrap().shape, Shape::Atom);
        assert_eq!(o.find(&p("script")).unwrap().shape, Shape::List);
        assert_eq!(o.children(&p("graph")), ["cardinality", "layers"]);
        let name = o.find(&p("name")).unwrap();
        assert_eq!(&TEXT[name.value.clone()], "\"a ) b\"");
        let raw = o.find(&p("raw")).unwrap();
        assert_eq!(&TEXT[raw.value.clone()], "r#\"x \" ) \"#");
    }

    #[test]
    fn deepest_entry_and_partial_input() {
        let text = "(\n  a: (\n    b: 5\n    c: 4,\n  ),\n)";
        let o = Outline::of(text);
        assert!(o.stopped_at.is_some());
        let at = offset_of(text, 4, 5);
        assert_eq!(o.deepest_at(at).unwrap().path, p("a"));
        assert_eq!(o.deepest_at(offset_of(text, 3, 8)).unwrap().path, p("a.b"));
    }

    #[test]
    fn path_syntax() {
        assert_eq!(p("a.b[2][3].c").to_string(), "a.b[2][3].c");
        assert!(FieldPath::parse("a..b").is_none());
        assert!(FieldPath::parse("a[x]").is_none());
        assert!(FieldPath::parse("a.1").is_none());
    }

    #[test]
    fn line_col_round_trip() {
        let text = "ab\ncdé f\n";
        let off = offset_of(text, 2, 5);
        assert_eq!(&text[off..off + 1], "f");
        assert_eq!(line_col(text, off), (2, 5));
    }
}
