//! Scene files: a RON description of a model, its data and a script of steps.
//!
//! A scene names only what it changes; every absent field takes the SPEC default (see
//! [`schema`] and `docs/scene-format.md`). [`parse`] and [`load`] deserialise a scene with
//! ron's `implicit_some` extension on (so `min_timesteps: 7` means `Some(7)`), reject unknown
//! fields, then run [`Scene::validate`]. [`Scene::apply_set`] applies a command-line
//! `--set FIELD=VALUE` override, [`Scene::apply_set_midrun`] a script's `Set` step (which
//! refuses [frozen](is_frozen) settings), and [`Scene::to_ron`] writes the fully resolved scene
//! back.
//!
//! Every problem is reported as a [`Diagnostic`] naming the origin (file path or
//! `--set ...`), line, column and dotted field path:
//!
//! ```text
//! scenes/x.ron:12:5: architecture.vector_dim = 0: must be between 1 and 16
//! scenes/x.ron:3:7: architecture.vektor_dim: unknown field; expected one of total_nodes, input_nodes, output_nodes, vector_dim, classes
//! scenes/x.ron:8:1: forward: syntax error: expected comma
//! ```

mod diagnostic;
mod locate;
mod memory;
pub mod schema;
mod set;
pub mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use ron::extensions::Extensions;

use diagnostic::*;
use locate::{Entry, FieldPath, Outline, Shape, line_col, offset_of, skip_trivia};
pub use memory::{DataShape, MemoryEstimate, format_bytes};
pub use schema::*;
use set::*;
pub use set::{MIDRUN_SECTIONS, is_frozen};
pub use validate::{MEMORY_LIMIT, ValueError};

/// Anything wrong with a scene file or a `--set` assignment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SceneError {
    /// The scene file could not be read.
    #[error("{path}: cannot read scene file: {source}")]
    Io {
        /// The file as given.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The scene text or an assignment is invalid; one diagnostic per problem, in order.
    #[error("{}", DisplayLines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl SceneError {
    /// The diagnostics, if this is not an I/O error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            SceneError::Invalid(diagnostics) => diagnostics,
            SceneError::Io { .. } => &[],
        }
    }
}

struct DisplayLines<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The text is not valid RON.
    Syntax,
    /// A struct or variant has no field of that name.
    UnknownField,
    /// An enum has no variant of that name.
    UnknownVariant,
    /// A required field (e.g. `EdgeList` `path`) is missing.
    MissingField,
    /// A field is given twice.
    DuplicateField,
    /// A value has the wrong type or does not fit the integer type.
    Type,
    /// A value is outside its allowed range, or breaks a cross-field rule or the memory limit.
    Range,
    /// A `--set` assignment or `Set` step is malformed, names no field, or names a list.
    Assignment,
    /// A `Set` step (or [`Scene::apply_set_midrun`]) names a setting that cannot change
    /// mid-run (see [`is_frozen`]).
    Frozen,
}

/// One problem, located in a scene file or a `--set` assignment.
///
/// Displays as `ORIGIN:LINE:COLUMN: MESSAGE`, where MESSAGE begins with the field path.
/// For `--set` assignments ORIGIN is `--set FIELD=VALUE`, LINE is 1 and COLUMN counts
/// characters of `FIELD=VALUE`; for [`Scene::apply_set_midrun`] ORIGIN is `Set FIELD=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file path, `--set FIELD=VALUE`, or `Set FIELD=VALUE`.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted field path (`forward.tau.min`, `graph.cardinality`, `script[0].samples`);
    /// empty when the problem is not inside any field.
    pub path: String,
    /// The kind of problem.
    pub kind: DiagnosticKind,
    /// The text after the position, starting with the field path.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME)
}

/// Parses and validates scene text. `origin` (usually the file path) prefixes every message.
pub fn parse(text: &str, origin: &str) -> Result<Scene, SceneError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((line, column)) = too_deep(text, MAX_NESTING) {
        return Err(SceneError::Invalid(vec![Diagnostic {
            origin: origin.to_string(),
            line,
            column,
            path: String::new(),
            kind: DiagnosticKind::Syntax,
            message: format!(
                "brackets nested deeper than {MAX_NESTING} levels; a scene needs a handful"
            ),
        }]));
    }
    let scene: Scene = ron_options()
        .from_str(text)
        .map_err(|e| SceneError::Invalid(vec![ron_diagnostic(text, &e, &FileSite { origin })]))?;
    if let Err(errors) = scene.validate() {
        let outline = Outline::of(text);
        let mut diagnostics: Vec<Diagnostic> = errors
            .iter()
            .map(|e| file_range_diagnostic(text, &outline, origin, e))
            .collect();
        diagnostics.sort_by_key(|d| (d.line, d.column));
        return Err(SceneError::Invalid(diagnostics));
    }
    Ok(scene)
}

/// The deepest nesting of `(`, `[` and `{` a scene may use. The parser recurses per level, so a
/// limit keeps a hostile file from overflowing the stack (issue 12, item 8).
pub const MAX_NESTING: usize = 128;

/// Where (1-based line and column, in characters) brackets first nest deeper than `limit`,
/// ignoring strings, raw strings, characters and comments; `None` when they never do.
pub(super) fn too_deep(text: &str, limit: usize) -> Option<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let (mut depth, mut line, mut column) = (0usize, 1usize, 1usize);
    let mut i = 0;
    let advance = |i: usize, line: &mut usize, column: &mut usize| {
        if chars[i] == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    advance(i, &mut line, &mut column);
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                // Block comments nest in RON.
                let mut open = 0usize;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        open += 1;
                        advance(i, &mut line, &mut column);
                        i += 1;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        open -= 1;
                        advance(i, &mut line, &mut column);
                        i += 1;
                        if open == 0 {
                            advance(i, &mut line, &mut column);
                            i += 1;
                            break;
                        }
                    }
                    advance(i, &mut line, &mut column);
                    i += 1;
                }
                continue;
            }
            'r' if matches!(next, Some('"') | Some('#')) => {
                let mut hashes = 0;
                let mut j = i + 1;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) == Some(&'"') {
                    let closing: Vec<char> = std::iter::once('"')
                        .chain(std::iter::repeat_n('#', hashes))
                        .collect();
                    while i <= j {
                        advance(i, &mut line, &mut column);
                        i += 1;
                    }
                    while i < chars.len() && !chars[i..].starts_with(&closing) {
                        advance(i, &mut line, &mut column);
                        i += 1;
                    }
                    for _ in 0..closing.len().min(chars.len() - i) {
                        advance(i, &mut line, &mut column);
                        i += 1;
                    }
                    continue;
                }
            }
            '"' | '\'' => {
                advance(i, &mut line, &mut column);
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        advance(i, &mut line, &mut column);
                        i += 1;
                    }
                    advance(i, &mut line, &mut column);
                    i += 1;
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > limit {
                    return Some((line, column));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if i < chars.len() {
            advance(i, &mut line, &mut column);
            i += 1;
        }
    }
    None
}

/// Reads and parses a scene file; relative paths inside it are left as written (they are
/// resolved against the working directory when used).
pub fn load(path: &Path) -> Result<Scene, SceneError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
        path: origin.clone(),
        source,
    })?;
    parse(&text, &origin)
}

impl Scene {
    /// The fully resolved scene as pretty RON (every field written, `implicit_some` style:
    /// `min_timesteps: 7`, `target_active: None`). [`parse`] reads it back to an equal scene.
    pub fn to_ron(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .new_line("\n")
            .indentor("    ");
        let mut text = ron_options()
            .to_string_pretty(self, config)
            .expect("a scene always serialises to RON");
        text.push('\n');
        text
    }

    /// The radiation kernel this scene runs on this CPU (`radiation.backend` resolved for the
    /// graph's node count and dimension).
    pub fn radiation_backend(&self) -> crate::radiation::Backend {
        crate::radiation::Backend::resolve(
            self.radiation.backend,
            self.architecture.total_nodes as usize,
            self.architecture.vector_dim as usize,
        )
    }
}
