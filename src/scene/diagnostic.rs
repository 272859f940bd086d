//! Positioned diagnostics: where in a scene file (or a `--set` argument) an error lies, and
//! how ron's errors become a [`Diagnostic`] naming line, column and field path.

use super::*;

/// Where positions of a parsed text are reported.
pub(super) trait Site {
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
pub(super) struct FileSite<'a> {
    pub(super) origin: &'a str,
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
pub(super) struct SetSite<'a> {
    pub(super) assignment: &'a Assignment,
    pub(super) value: std::ops::Range<usize>,
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
pub(super) fn ron_diagnostic(
    text: &str,
    error: &ron::error::SpannedError,
    site: &dyn Site,
) -> Diagnostic {
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
pub(super) fn bare_variant_diagnostic(
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
pub(super) fn lower_first(s: &str) -> String {
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
pub(super) fn file_range_diagnostic(
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
