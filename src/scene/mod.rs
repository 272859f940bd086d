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

mod locate;
mod memory;
pub mod schema;
pub mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use ron::extensions::Extensions;

use locate::{Entry, FieldPath, Outline, Shape, line_col, offset_of, skip_trivia};
pub use memory::MemoryEstimate;
pub use schema::*;
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

    /// Applies one `FIELD=VALUE` override, then validates the whole scene.
    ///
    /// FIELD is a dotted path (`architecture.vector_dim`, `forward.tau.min`,
    /// `graph.cardinality` for a field of the current variant, `radiation.cache.enabled`);
    /// VALUE is RON (`8`, `Multi`, `EdgeList(path: "e.txt")`, `7` for an `Option`, `None`).
    /// A bare word given for a string field is taken as that string (`name=run1`). Lists
    /// (`script`, `encodings.phase`) cannot be set. On error the scene is unchanged.
    ///
    /// Because every call validates, changes that are only valid together (e.g. shrinking
    /// `total_nodes` below the current `input_nodes`) need [`Scene::apply_sets`].
    pub fn apply_set(&mut self, assignment: &str) -> Result<(), SceneError> {
        self.apply_sets(&[assignment])
    }

    /// Applies several `FIELD=VALUE` overrides in order and validates once at the end, so they
    /// may be valid only together. Each range error is reported against the last assignment
    /// that set the offending field (or a field the rule involves). On error the scene is
    /// unchanged.
    pub fn apply_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), SceneError> {
        if assignments.is_empty() {
            return Ok(());
        }
        let mut scene = self.clone();
        let mut applied = Vec::with_capacity(assignments.len());
        for assignment in assignments {
            let assignment = Assignment::parse(assignment.as_ref(), Via::Option)?;
            scene = scene.with_assignment(&assignment)?;
            applied.push(assignment);
        }
        if let Err(errors) = scene.validate() {
            let diagnostics = errors
                .iter()
                .filter_map(|e| {
                    let assignment = attribute(e, &applied)?;
                    Some(assignment.range_diagnostic(e))
                })
                .collect();
            return Err(SceneError::Invalid(diagnostics));
        }
        *self = scene;
        Ok(())
    }

    /// Applies a script's `Set { field, value }` step to the scene of a running run.
    ///
    /// Like [`Scene::apply_set`] (`FIELD=VALUE`, VALUE in RON, the whole scene validated
    /// afterwards, the scene unchanged on error), but a [frozen](is_frozen) field is refused
    /// with a [`DiagnosticKind::Frozen`] diagnostic that says why, e.g. `architecture.total_nodes
    /// cannot change mid-run: it fixes the graph and parameter shapes; start a new run
    /// instead`. The script's other `Set` steps are not replayed. Diagnostics have the origin
    /// `Set FIELD=VALUE`.
    pub fn apply_set_midrun(&mut self, field: &str, value: &str) -> Result<(), SceneError> {
        let text = format!("{}={}", field.trim(), value.trim());
        let a = Assignment::parse(&text, Via::Step)?;
        if let Some(message) = frozen_message(&a.path) {
            let mut d = a.diagnostic(1, message);
            d.kind = DiagnosticKind::Frozen;
            return Err(SceneError::Invalid(vec![d]));
        }
        let scene = self.with_assignment(&a)?;
        if let Err(errors) = scene.validate_with(false) {
            let diagnostics = errors.iter().map(|e| a.range_diagnostic(e)).collect();
            return Err(SceneError::Invalid(diagnostics));
        }
        *self = scene;
        Ok(())
    }

    /// Replays the script's `Set` steps in order on a copy of the scene and reports each one
    /// that names no settable field (at `script[i].field`) or whose value does not parse (at
    /// `script[i].value`). With `check_values` (only meaningful when the scene itself is
    /// valid), each step's result is validated too. Steps whose field is malformed or frozen
    /// are skipped: the range checks report them.
    pub(super) fn replay_set_steps(&self, check_values: bool) -> Vec<ValueError> {
        let mut errors = Vec::new();
        let mut working: Option<Scene> = None;
        for (i, step) in self.script.iter().enumerate() {
            let Step::Set { field, value } = step else {
                continue;
            };
            if check_set_field(field).is_err() || value.trim().is_empty() {
                continue;
            }
            let working = working.get_or_insert_with(|| Scene {
                script: Scene::default().script,
                ..self.clone()
            });
            let field_error = |message: String| ValueError {
                path: format!("script[{i}].field"),
                value: format!("{field:?}"),
                message,
                related: Vec::new(),
            };
            let value_error = |message: String| ValueError {
                path: format!("script[{i}].value"),
                value: format!("{value:?}"),
                message,
                related: Vec::new(),
            };
            let text = format!("{}={}", field.trim(), value.trim());
            let a = match Assignment::parse(&text, Via::Step) {
                Ok(a) => a,
                Err(e) => {
                    errors.extend(
                        e.diagnostics()
                            .iter()
                            .map(|d| field_error(d.message.clone())),
                    );
                    continue;
                }
            };
            let resolved = working.to_ron();
            if let Err(message) = settable(&resolved, &Outline::of(&resolved), &a) {
                errors.push(field_error(message));
                continue;
            }
            match working.with_assignment(&a) {
                Err(e) => {
                    errors.extend(
                        e.diagnostics()
                            .iter()
                            .map(|d| value_error(d.message.clone())),
                    );
                }
                Ok(next) => {
                    if check_values {
                        if let Err(invalid) = next.validate_with(false) {
                            errors.extend(invalid.iter().map(|e| value_error(e.to_string())));
                            continue;
                        }
                    }
                    *working = next;
                }
            }
        }
        errors
    }

    /// Splices the assignment's value into the resolved text and reparses it.
    fn with_assignment(&self, a: &Assignment) -> Result<Scene, SceneError> {
        let text = self.to_ron();
        let outline = Outline::of(&text);
        let fail = |message: String| SceneError::Invalid(vec![a.diagnostic(1, message)]);
        let entry = settable(&text, &outline, a).map_err(fail)?;
        let value = if text[entry.value.clone()].starts_with('"') && !looks_like_string(&a.value) {
            ron::to_string(&a.value).expect("a string always serialises")
        } else {
            a.value.clone()
        };
        let start = entry.value.start;
        let spliced = format!("{}{}{}", &text[..start], value, &text[entry.value.end..]);
        let site = SetSite {
            assignment: a,
            value: start..start + value.len(),
        };
        let scene: Scene = ron_options()
            .from_str(&spliced)
            .map_err(|e| SceneError::Invalid(vec![ron_diagnostic(&spliced, &e, &site)]))?;
        let value_outline = Outline::of(&value);
        let single = value_outline.stopped_at.is_none()
            && value_outline.entries.first().is_some_and(|e| e.closed);
        if !single {
            return Err(fail(format!(
                "{}: syntax error: the value must be one complete RON value",
                a.path
            )));
        }
        Ok(scene)
    }
}

/// The entry `a` assigns to in the resolved scene `text`, or why there is none.
fn settable<'o>(text: &str, outline: &'o Outline, a: &Assignment) -> Result<&'o Entry, String> {
    let Some(entry) = outline.find(&a.path) else {
        return Err(no_such_field(text, outline, &a.path, a.via));
    };
    if entry.shape == Shape::List {
        return Err(format!(
            "{}: a list cannot be set with {}; edit the scene file instead",
            a.path,
            a.via.name()
        ));
    }
    Ok(entry)
}

/// Whether the setting at `path` (a dotted field path such as `architecture.total_nodes`) is
/// fixed when a run starts, so a script's `Set` step may not change it.
///
/// Frozen: `name`, `seed`, and everything under `architecture`, `resolution`, `graph`,
/// `adapter`, `encodings`, `data`, `schedule` and `script` (and the whole scene, path `""`).
/// Everything under `forward`, `radiation`, `loss` and `training` may change between steps.
/// A path that is not a field path, or names no known section, is not frozen (whether it
/// exists is checked when it is applied).
pub fn is_frozen(path: &str) -> bool {
    FieldPath::parse(path.trim()).is_some_and(|p| frozen_reason(&p).is_some())
}

/// The sections of a scene that may change between script steps (by `Set` steps, and by a
/// `Restore`, which continues with the checkpoint's); every other section is fixed when the run
/// starts. The one list: [`Scene::take_midrun_settings`] and the frozen check follow it.
pub const MIDRUN_SECTIONS: [&str; 4] = ["forward", "radiation", "loss", "training"];

impl Scene {
    /// Copies the sections of [`MIDRUN_SECTIONS`] from `other` (a restored checkpoint's scene).
    pub fn take_midrun_settings(&mut self, other: &Scene) {
        let Scene {
            forward,
            radiation,
            loss,
            training,
            ..
        } = other;
        self.forward = forward.clone();
        self.radiation = radiation.clone();
        self.loss = loss.clone();
        self.training = training.clone();
    }
}

/// Why the setting at `path` cannot change mid-run; `None` if it can.
fn frozen_reason(path: &FieldPath) -> Option<&'static str> {
    let Some(locate::Seg::Field(section)) = path.0.first() else {
        return Some("it is the whole scene");
    };
    if MIDRUN_SECTIONS.contains(&section.as_str()) {
        return None;
    }
    Some(match section.as_str() {
        "name" => "it names the run's output directory and reports",
        "seed" => "every random stream was drawn from it when the run started",
        "architecture" => "it fixes the graph and parameter shapes",
        "resolution" => "it fixes the lookup tables and the range of every parameter index",
        "graph" => "the static graph is built when the run starts",
        "adapter" => "the input adapter's weights are drawn when the run starts",
        "encodings" => "the class encodings are fixed when the run starts",
        "data" => "the dataset is loaded when the run starts",
        "schedule" => "the executor, threads and replicas are fixed when the run starts",
        "script" => "the script is already running",
        _ => return None,
    })
}

/// The full "cannot change mid-run" message for a frozen `path`.
fn frozen_message(path: &FieldPath) -> Option<String> {
    frozen_reason(path)
        .map(|reason| format!("{path} cannot change mid-run: {reason}; start a new run instead"))
}

/// The checks of a `Set` step's `field` that need no scene: a dotted field path without list
/// indices, and not frozen. The message fits after `script[i].field = "...": `.
pub(super) fn check_set_field(field: &str) -> Result<(), String> {
    let field = field.trim();
    if field.is_empty() {
        return Err("must not be empty".to_string());
    }
    let Some(path) = FieldPath::parse(field) else {
        return Err("must be a dotted field path, e.g. training.learning_rate_phase".to_string());
    };
    if path.has_index() {
        return Err("list elements cannot be set; edit the scene file instead".to_string());
    }
    match frozen_message(&path) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

fn looks_like_string(value: &str) -> bool {
    value.starts_with('"') || value.starts_with("r\"") || value.starts_with("r#")
}

/// The "no such field" message for `path`, listing what exists at its nearest parent.
fn no_such_field(text: &str, outline: &Outline, path: &FieldPath, via: Via) -> String {
    let Some(parent) = outline.nearest(path) else {
        return format!("no such field `{path}`");
    };
    let parent_name = if parent.path.0.is_empty() {
        "the scene".to_string()
    } else {
        format!("`{}`", parent.path)
    };
    match parent.shape {
        Shape::Struct => {
            let variant = parent
                .name
                .as_ref()
                .map(|n| format!(" (variant `{n}`)"))
                .unwrap_or_default();
            format!(
                "no such field `{path}`; fields of {parent_name}{variant} are: {}",
                outline.children(&parent.path).join(", ")
            )
        }
        Shape::List => format!(
            "no such field `{path}`: {parent_name} is a list and cannot be set with {}; \
             edit the scene file instead",
            via.name()
        ),
        _ => format!(
            "no such field `{path}`: {parent_name} is `{}`, which has no fields",
            &text[parent.value.clone()]
        ),
    }
}

/// Where an assignment comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// A `--set FIELD=VALUE` option.
    Option,
    /// A script's `Set` step, applied mid-run.
    Step,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Option => "--set",
            Via::Step => "Set",
        }
    }
}

/// One parsed `--set FIELD=VALUE` (or `Set` step).
#[derive(Debug)]
struct Assignment {
    /// `FIELD=VALUE` as given (trimmed); the origin is `--set {text}` (or `Set {text}`).
    text: String,
    via: Via,
    path: FieldPath,
    value: String,
    /// 1-based column of VALUE in `text`.
    value_column: usize,
}

impl Assignment {
    fn parse(raw: &str, via: Via) -> Result<Assignment, SceneError> {
        let text = raw.trim().to_string();
        let fail = |column: usize, path: &str, message: String| {
            SceneError::Invalid(vec![Diagnostic {
                origin: format!("{} {text}", via.name()),
                line: 1,
                column,
                path: path.to_string(),
                kind: DiagnosticKind::Assignment,
                message,
            }])
        };
        let Some((field, value)) = text.split_once('=') else {
            return Err(fail(
                1,
                "",
                "expected FIELD=VALUE, e.g. architecture.vector_dim=8".to_string(),
            ));
        };
        let field = field.trim();
        let value_column = text.chars().count() - value.trim_start().chars().count() + 1;
        let value = value.trim();
        let Some(path) = FieldPath::parse(field) else {
            return Err(fail(
                1,
                field,
                format!(
                    "`{field}` is not a field path; expected names separated by dots, \
                     e.g. forward.tau.min"
                ),
            ));
        };
        if path.has_index() {
            return Err(fail(
                1,
                field,
                format!(
                    "{field}: list elements cannot be set with {}; edit the scene file instead",
                    via.name()
                ),
            ));
        }
        if path.0.is_empty() {
            return Err(fail(1, "", "missing FIELD before `=`".to_string()));
        }
        if value.is_empty() {
            return Err(fail(
                value_column,
                field,
                format!("{field}: missing VALUE after `=`"),
            ));
        }
        Ok(Assignment {
            value: value.to_string(),
            path,
            value_column,
            text,
            via,
        })
    }

    fn origin(&self) -> String {
        format!("{} {}", self.via.name(), self.text)
    }

    fn diagnostic(&self, column: usize, message: String) -> Diagnostic {
        Diagnostic {
            origin: self.origin(),
            line: 1,
            column,
            path: self.path.to_string(),
            kind: DiagnosticKind::Assignment,
            message,
        }
    }

    /// Column (in `text`) of byte `offset` of the value.
    fn column_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.value.len());
        let offset = (0..=offset)
            .rev()
            .find(|&o| self.value.is_char_boundary(o))
            .unwrap_or(0);
        self.value_column + self.value[..offset].chars().count()
    }

    /// A validation error caused by this assignment, located inside its value if possible.
    fn range_diagnostic(&self, e: &ValueError) -> Diagnostic {
        let outline = Outline::of(&self.value);
        let located = std::iter::once(&e.path)
            .chain(&e.related)
            .filter_map(|p| FieldPath::parse(p))
            .filter(|p| p.starts_with(&self.path))
            .find_map(|p| {
                let relative = FieldPath(p.0[self.path.0.len()..].to_vec());
                outline.find(&relative).map(|entry| entry.start())
            });
        Diagnostic {
            origin: self.origin(),
            line: 1,
            column: self.column_at(located.unwrap_or(0)),
            path: e.path.clone(),
            kind: DiagnosticKind::Range,
            message: e.to_string(),
        }
    }
}

/// The last assignment that set `e.path` or one of `e.related` (or a parent or child of
/// them); the last assignment of all if none did.
fn attribute<'a>(e: &ValueError, applied: &'a [Assignment]) -> Option<&'a Assignment> {
    let paths: Vec<FieldPath> = std::iter::once(&e.path)
        .chain(&e.related)
        .filter_map(|p| FieldPath::parse(p))
        .collect();
    applied
        .iter()
        .rev()
        .find(|a| {
            paths
                .iter()
                .any(|p| p.starts_with(&a.path) || a.path.starts_with(p))
        })
        .or(applied.last())
}

/// Where positions of a parsed text are reported.
trait Site {
    /// Builds the diagnostic for byte `offset` of the parsed text.
    fn at(
        &self,
        text: &str,
        offset: usize,
        path: String,
        kind: DiagnosticKind,
        message: String,
    ) -> Diagnostic;
}

/// Positions in a scene file.
struct FileSite<'a> {
    origin: &'a str,
}

impl Site for FileSite<'_> {
    fn at(
        &self,
        text: &str,
        offset: usize,
        path: String,
        kind: DiagnosticKind,
        message: String,
    ) -> Diagnostic {
        let (line, column) = line_col(text, offset);
        Diagnostic {
            origin: self.origin.to_string(),
            line,
            column,
            path,
            kind,
            message,
        }
    }
}

/// Positions in a resolved scene text with an assignment's value spliced in at `value`.
struct SetSite<'a> {
    assignment: &'a Assignment,
    value: std::ops::Range<usize>,
}

impl Site for SetSite<'_> {
    fn at(
        &self,
        _text: &str,
        offset: usize,
        path: String,
        kind: DiagnosticKind,
        message: String,
    ) -> Diagnostic {
        let column = if self.value.contains(&offset) {
            self.assignment.column_at(offset - self.value.start)
        } else {
            self.assignment.value_column
        };
        Diagnostic {
            origin: self.assignment.origin(),
            line: 1,
            column,
            path,
            kind,
            message,
        }
    }
}

/// Turns a ron error into a located diagnostic with the field path.
fn ron_diagnostic(text: &str, error: &ron::error::SpannedError, site: &dyn Site) -> Diagnostic {
    use ron::error::Error as E;
    let outline = Outline::of(text);
    let raw = offset_of(text, error.span.start.line, error.span.start.col);
    let snapped = skip_trivia(text, raw);
    let entry = outline.deepest_at(snapped);
    let entry_path = entry.map(|e| e.path.clone()).unwrap_or_default();
    let field_path = |name: &str| {
        let mut path = entry_path.clone();
        if entry.is_none_or(|e| e.path.0.last() != Some(&locate::Seg::Field(name.into()))) {
            path.0.push(locate::Seg::Field(name.to_string()));
        }
        path
    };
    let entry_start = entry.map_or(snapped, |e| e.start());
    let found = entry
        .map(|e| {
            let s = &text[e.value.start..e.value.end.min(text.len())];
            if s.chars().count() > 40 {
                format!("{}...", s.chars().take(40).collect::<String>())
            } else {
                s.to_string()
            }
        })
        .unwrap_or_default();
    let found_text = if found.is_empty() {
        String::new()
    } else {
        format!(", found `{found}`")
    };
    let prefix = if entry_path.0.is_empty() {
        String::new()
    } else {
        format!("{entry_path}: ")
    };
    if text.trim().is_empty() {
        let message = "syntax error: the scene is empty; write `()` for all defaults".to_string();
        return site.at(text, 0, String::new(), DiagnosticKind::Syntax, message);
    }
    if let Some(d) = bare_variant_diagnostic(text, &outline, raw, error, site) {
        return d;
    }
    let (kind, offset, path, message) = match &error.code {
        E::NoSuchStructField {
            expected, found, ..
        } => {
            let path = field_path(found);
            let message = format!(
                "{path}: unknown field; expected one of {}",
                expected.join(", ")
            );
            (DiagnosticKind::UnknownField, snapped, path, message)
        }
        E::DuplicateStructField { field, .. } => {
            let path = field_path(field);
            (
                DiagnosticKind::DuplicateField,
                snapped,
                path.clone(),
                format!("{path}: duplicate field"),
            )
        }
        E::MissingStructField { field, outer } => {
            let mut path = entry_path.clone();
            path.0.push(locate::Seg::Field(field.to_string()));
            let within = outer
                .as_ref()
                .map(|o| format!(" (`{o}` requires it)"))
                .unwrap_or_default();
            let message = format!("{path}: missing field{within}");
            (DiagnosticKind::MissingField, entry_start, path, message)
        }
        E::NoSuchEnumVariant {
            expected, found, ..
        } => {
            let message = format!(
                "{entry_path}: unknown variant `{found}`; expected one of {}",
                expected.join(", ")
            );
            (
                DiagnosticKind::UnknownVariant,
                entry_start,
                entry_path,
                message,
            )
        }
        E::InvalidValueForType { expected, found } => {
            let message = format!("{prefix}invalid type: expected {expected}, found {found}");
            let offset = entry.map_or(snapped, |e| e.value.start);
            (DiagnosticKind::Type, offset, entry_path, message)
        }
        E::SuggestRawIdentifier(_) | E::InvalidIdentifier(_) | E::ExpectedIdentifier => {
            let message = format!(
                "{prefix}invalid value: expected an identifier (a variant name){found_text}"
            );
            let offset = entry.map_or(snapped, |e| e.value.start);
            (DiagnosticKind::Type, offset, entry_path, message)
        }
        code @ (E::ExpectedDifferentLength { .. }
        | E::IntegerOutOfBounds
        | E::ExpectedInteger
        | E::ExpectedFloat
        | E::ExpectedBoolean
        | E::ExpectedString
        | E::ExpectedChar
        | E::ExpectedByteString
        | E::ExpectedOption
        | E::ExpectedArray
        | E::ExpectedMap
        | E::ExpectedStructLike
        | E::ExpectedNamedStructLike(_)
        | E::ExpectedDifferentStructName { .. }
        | E::ExpectedStructName(_)
        | E::ExpectedUnit
        | E::InvalidIntegerDigit { .. }
        | E::Message(_)) => {
            let message = format!(
                "{prefix}invalid value: {}{found_text}",
                lower_first(&code.to_string())
            );
            let offset = entry.map_or(snapped, |e| e.value.start);
            (DiagnosticKind::Type, offset, entry_path, message)
        }
        // ron read a prefix of an atom (`1` of `1.5` for an integer) and choked on the rest.
        code if entry.is_some_and(|e| {
            e.shape == Shape::Atom && e.closed && e.value.start < snapped && snapped < e.value.end
        }) =>
        {
            let e = entry.expect("checked by the guard");
            let message = format!(
                "{prefix}invalid value: unexpected `{}` in `{}` ({})",
                &text[snapped..e.value.end],
                &text[e.value.clone()],
                lower_first(&code.to_string())
            );
            (DiagnosticKind::Type, e.value.start, entry_path, message)
        }
        code => {
            let offset = if snapped >= text.len() { raw } else { snapped };
            let message = format!("{prefix}syntax error: {}", lower_first(&code.to_string()));
            (DiagnosticKind::Syntax, offset, entry_path, message)
        }
    };
    site.at(text, offset, path.to_string(), kind, message)
}

/// A variant with fields written without parentheses (`Train`, `Immediate`): ron stops
/// just after the name, expecting `(`. Points at the name and says what to write.
fn bare_variant_diagnostic(
    text: &str,
    outline: &Outline,
    raw: usize,
    error: &ron::error::SpannedError,
    site: &dyn Site,
) -> Option<Diagnostic> {
    if !matches!(error.code, ron::error::Error::ExpectedStructLike) {
        return None;
    }
    let entry = outline
        .entries
        .iter()
        .filter(|e| {
            e.closed
                && e.shape == Shape::Atom
                && e.name.is_some()
                && e.value.end <= raw
                && skip_trivia(text, e.value.end) >= raw
        })
        .max_by_key(|e| e.value.end)?;
    let name = &text[entry.value.clone()];
    let path = entry.path.to_string();
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    let message = format!(
        "{prefix}invalid value: `{name}` needs parentheses here: write `{name}()` for its \
         defaults, or `{name}(field: value, ...)`"
    );
    Some(site.at(text, entry.value.start, path, DiagnosticKind::Type, message))
}

/// Lower-cases the first letter of a ron message ("Expected comma" -> "expected comma").
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(s[a.len_utf8()..].chars()).collect()
        }
        _ => s.to_string(),
    }
}

/// Locates a validation error in a scene file: at its field, else at a related field the
/// text contains, else at the nearest written parent (then marked `(default)`).
fn file_range_diagnostic(
    text: &str,
    outline: &Outline,
    origin: &str,
    e: &ValueError,
) -> Diagnostic {
    let own = FieldPath::parse(&e.path).unwrap_or_default();
    let (offset, defaulted) = match outline.find(&own) {
        Some(entry) => (entry.start(), false),
        None => {
            let related = e
                .related
                .iter()
                .filter_map(|p| FieldPath::parse(p))
                .find_map(|p| outline.find(&p));
            let entry = related.or_else(|| outline.nearest(&own));
            (entry.map_or(0, |e| e.start()), true)
        }
    };
    let message = if defaulted {
        let value = if e.value.is_empty() {
            String::new()
        } else {
            format!(" = {}", e.value)
        };
        format!("{}{value} (default): {}", e.path, e.message)
    } else {
        e.to_string()
    };
    FileSite { origin }.at(text, offset, e.path.clone(), DiagnosticKind::Range, message)
}
