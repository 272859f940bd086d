//! `--set` overrides and `Set` steps: field paths, values, the frozen sections, and the
//! positioned diagnostics of an assignment.

use super::*;

impl Scene {
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
                    if check_values && let Err(invalid) = next.validate_with(false) {
                        errors.extend(invalid.iter().map(|e| value_error(e.to_string())));
                        continue;
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
        if super::too_deep(&value, super::MAX_NESTING).is_some() {
            return Err(fail(format!(
                "{}: brackets nested deeper than {} levels; a value needs a handful",
                a.path,
                super::MAX_NESTING
            )));
        }
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
pub(super) fn settable<'o>(
    text: &str,
    outline: &'o Outline,
    a: &Assignment,
) -> Result<&'o Entry, String> {
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
pub(super) fn frozen_reason(path: &FieldPath) -> Option<&'static str> {
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
pub(super) fn frozen_message(path: &FieldPath) -> Option<String> {
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

pub(super) fn looks_like_string(value: &str) -> bool {
    value.starts_with('"') || value.starts_with("r\"") || value.starts_with("r#")
}

/// The "no such field" message for `path`, listing what exists at its nearest parent.
pub(super) fn no_such_field(text: &str, outline: &Outline, path: &FieldPath, via: Via) -> String {
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
pub(super) enum Via {
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
pub(super) struct Assignment {
    /// `FIELD=VALUE` as given (trimmed); the origin is `--set {text}` (or `Set {text}`).
    pub(super) text: String,
    pub(super) via: Via,
    pub(super) path: FieldPath,
    pub(super) value: String,
    /// 1-based column of VALUE in `text`.
    pub(super) value_column: usize,
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

    pub(super) fn origin(&self) -> String {
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
    pub(super) fn column_at(&self, offset: usize) -> usize {
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
pub(super) fn attribute<'a>(e: &ValueError, applied: &'a [Assignment]) -> Option<&'a Assignment> {
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
