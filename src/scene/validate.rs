//! Range and cross-field checks of a deserialised [`Scene`].
//!
//! [`Scene::validate`] collects every violation as a [`ValueError`] naming the field path, the
//! offending value and the allowed range; [`super::parse`] maps each path back to a line and
//! column of the scene text.

use std::fmt;

use super::memory::format_bytes;
use super::schema::*;

/// Scenes whose [`Scene::memory_estimate`] exceeds this many bytes are rejected (16 GiB).
pub const MEMORY_LIMIT: u64 = 16 << 30;

/// One violated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    /// Dotted field path, e.g. `forward.tau.min`, `graph.cardinality`, `script[0].samples`,
    /// `encodings.phase[2][1]`. Fields of an enum variant sit directly under the enum's field.
    pub path: String,
    /// The offending value in RON syntax (empty when the rule is about a whole list).
    pub value: String,
    /// What is allowed, e.g. `must be between 1 and 16`.
    pub message: String,
    /// Other fields the rule involves (for cross-field rules); used to point at a field the
    /// scene text actually contains when `path` itself was left at its default.
    pub related: Vec<String>,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{} = {}: {}", self.path, self.value, self.message)
        }
    }
}

impl Scene {
    /// Checks every range and cross-field rule; returns all violations, in field order.
    ///
    /// When every range holds, the [`Scene::memory_estimate`] is checked against
    /// [`MEMORY_LIMIT`] as well, so an oversized scene is rejected before anything allocates.
    ///
    /// `Set` steps are checked in order against the scene as the earlier `Set` steps leave it:
    /// the field must exist there and not be [frozen](super::is_frozen), and the value must
    /// parse and (when the rest of the scene is valid) give a valid scene.
    pub fn validate(&self) -> Result<(), Vec<ValueError>> {
        self.validate_with(true)
    }

    /// [`Scene::validate`], optionally without replaying the script's `Set` steps (a run
    /// applying a `Set` mid-run must not re-check the steps it has already run).
    pub(super) fn validate_with(&self, replay_sets: bool) -> Result<(), Vec<ValueError>> {
        let mut c = Checker::default();
        c.scene(self);
        if c.errors.is_empty() {
            c.memory(self);
        }
        if replay_sets {
            let base_valid = c.errors.is_empty();
            c.errors.extend(self.replay_set_steps(base_valid));
            if base_valid {
                c.errors.extend(self.check_sweep());
            }
        }
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(c.errors)
        }
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<ValueError>,
}

impl Scene {
    /// Applies every sweep value to a copy of the scene (without the sweep), so a bad field
    /// or value is reported at load time at `sweep[i].field` or `sweep[i].values[j]`.
    fn check_sweep(&self) -> Vec<ValueError> {
        let mut errors = Vec::new();
        let base = Scene {
            sweep: Vec::new(),
            ..self.clone()
        };
        for (i, axis) in self.sweep.iter().enumerate() {
            let error = |path: String, value: String, message: String| ValueError {
                path,
                value,
                message,
                related: Vec::new(),
            };
            if axis.field.trim().is_empty() {
                errors.push(error(
                    format!("sweep[{i}].field"),
                    "\"\"".into(),
                    "must not be empty".into(),
                ));
                continue;
            }
            if axis.values.is_empty() || axis.values.len() > 10_000 {
                errors.push(error(
                    format!("sweep[{i}].values"),
                    format!("{} values", axis.values.len()),
                    "must hold between 1 and 10000 values".into(),
                ));
                continue;
            }
            for (j, value) in axis.values.iter().enumerate() {
                let mut probe = base.clone();
                if let Err(e) = probe.apply_set(&format!("{}={}", axis.field.trim(), value)) {
                    for d in e.diagnostics() {
                        errors.push(error(
                            format!("sweep[{i}].values[{j}]"),
                            format!("{value:?}"),
                            d.message.clone(),
                        ));
                    }
                }
            }
        }
        errors
    }
}

impl Checker {
    fn push(&mut self, path: &str, value: impl fmt::Display, message: impl Into<String>) {
        self.push_related(path, value, message, &[]);
    }

    fn push_related(
        &mut self,
        path: &str,
        value: impl fmt::Display,
        message: impl Into<String>,
        related: &[&str],
    ) {
        self.errors.push(ValueError {
            path: path.to_string(),
            value: value.to_string(),
            message: message.into(),
            related: related.iter().map(|r| r.to_string()).collect(),
        });
    }

    /// `lo <= value <= hi`.
    fn int(&mut self, path: &str, value: u64, lo: u64, hi: u64) -> bool {
        let ok = (lo..=hi).contains(&value);
        if !ok {
            self.push(path, value, between(lo, hi));
        }
        ok
    }

    fn at_least(&mut self, path: &str, value: u64, lo: u64) -> bool {
        let ok = value >= lo;
        if !ok {
            self.push(path, value, format!("must be at least {lo}"));
        }
        ok
    }

    fn finite(&mut self, path: &str, value: f32) -> bool {
        let ok = value.is_finite();
        if !ok {
            self.push(path, fmt_f32(value), "must be a finite number");
        }
        ok
    }

    /// A float in an interval; `lo_open` / `hi_open` exclude the ends.
    fn float(&mut self, path: &str, value: f32, lo: f32, lo_open: bool, hi: f32, hi_open: bool) {
        if !self.finite(path, value) {
            return;
        }
        let above = if lo_open { value > lo } else { value >= lo };
        let below = if hi_open { value < hi } else { value <= hi };
        if !(above && below) {
            let range = format!(
                "{}{}, {}{}",
                if lo_open { '(' } else { '[' },
                lo,
                hi,
                if hi_open { ')' } else { ']' }
            );
            self.push(path, fmt_f32(value), format!("must be in {range}"));
        }
    }

    fn float_at_least(&mut self, path: &str, value: f32, lo: f32) {
        if self.finite(path, value) && value < lo {
            self.push(path, fmt_f32(value), format!("must be at least {lo}"));
        }
    }

    fn scene(&mut self, s: &Scene) {
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            self.push(
                "name",
                format!("{:?}", s.name),
                "must be non-empty and use only A-Z, a-z, 0-9, `_`, `.` and `-`",
            );
        }
        self.architecture(&s.architecture);
        self.resolution(&s.resolution);
        self.graph(&s.graph);
        self.forward(&s.forward, s.architecture.total_nodes);
        self.radiation(&s.radiation, s);
        self.float(
            "loss.temperature",
            s.loss.temperature,
            0.0,
            true,
            1000.0,
            false,
        );
        self.float(
            "loss.label_smoothing",
            s.loss.label_smoothing,
            0.0,
            false,
            1.0,
            true,
        );
        self.training(&s.training);
        match s.adapter {
            Adapter::Mlp { hidden, dropout } => {
                self.int("adapter.hidden", hidden.into(), 1, 16384);
                self.float("adapter.dropout", dropout, 0.0, false, 1.0, true);
            }
            Adapter::Linear => {}
        }
        self.encodings(s);
        self.data(&s.data);
        self.int("schedule.threads", s.schedule.threads.into(), 0, 256);
        if let Granularity::Split { parts } = s.schedule.granularity {
            self.int("schedule.granularity.parts", parts.into(), 1, 64);
        }
        self.int(
            "schedule.batch_size",
            s.schedule.batch_size.into(),
            1,
            100_000,
        );
        self.int(
            "schedule.eval_replicas",
            s.schedule.eval_replicas.into(),
            1,
            256,
        );
        self.int(
            "schedule.train_worlds",
            s.schedule.train_worlds.into(),
            1,
            256,
        );
        self.script(&s.script);
    }

    fn training(&mut self, t: &Training) {
        self.float(
            "training.learning_rate_phase",
            t.learning_rate_phase,
            0.0,
            true,
            100.0,
            false,
        );
        self.float(
            "training.learning_rate_magnitude",
            t.learning_rate_magnitude,
            0.0,
            true,
            100.0,
            false,
        );
        let (UpdateSetting::Accumulate { threshold } | UpdateSetting::Immediate { threshold }) =
            t.update;
        self.float(
            "training.update.threshold",
            threshold,
            0.0,
            true,
            1000.0,
            false,
        );
        self.float(
            "training.hidden_credit_weight",
            t.hidden_credit_weight,
            0.0,
            false,
            1000.0,
            false,
        );
        if let Some(g) = &t.gradient_accumulation {
            self.int(
                "training.gradient_accumulation.steps",
                g.steps.into(),
                1,
                4096,
            );
        }
        self.int("training.batch_size", t.batch_size.into(), 1, 4096);
        if t.learn_encodings && t.optimizer == OptimizerSetting::SignAccumulator {
            self.push(
                "training.learn_encodings",
                t.learn_encodings,
                "learned encodings need a float optimizer: set training.optimizer to Adam(..) \
                 or Sgd(..) (the sign rule keeps no accumulators for encodings)",
            );
        }
        match t.optimizer {
            OptimizerSetting::SignAccumulator => {}
            OptimizerSetting::Adam {
                lr,
                beta1,
                beta2,
                epsilon,
                decay,
            } => {
                self.float("training.optimizer.lr", lr, 0.0, true, 1e6, false);
                self.float("training.optimizer.beta1", beta1, 0.0, false, 1.0, true);
                self.float("training.optimizer.beta2", beta2, 0.0, false, 1.0, true);
                self.float("training.optimizer.epsilon", epsilon, 0.0, true, 1.0, false);
                self.float("training.optimizer.decay", decay, 0.0, true, 1.0, false);
            }
            OptimizerSetting::Sgd {
                lr,
                momentum,
                decay,
            } => {
                self.float("training.optimizer.lr", lr, 0.0, true, 1e6, false);
                self.float(
                    "training.optimizer.momentum",
                    momentum,
                    0.0,
                    false,
                    1.0,
                    true,
                );
                self.float("training.optimizer.decay", decay, 0.0, true, 1.0, false);
            }
        }
    }

    fn architecture(&mut self, a: &Architecture) {
        let total_ok = self.int(
            "architecture.total_nodes",
            a.total_nodes.into(),
            3,
            1_000_000,
        );
        let input_ok = self.at_least("architecture.input_nodes", a.input_nodes.into(), 1);
        let output_ok = self.at_least("architecture.output_nodes", a.output_nodes.into(), 1);
        let io = u64::from(a.input_nodes) + u64::from(a.output_nodes);
        if total_ok && input_ok && output_ok && io > u64::from(a.total_nodes) {
            self.push_related(
                "architecture.total_nodes",
                a.total_nodes,
                format!(
                    "must be at least input_nodes + output_nodes = {} + {} = {io}",
                    a.input_nodes, a.output_nodes
                ),
                &["architecture.input_nodes", "architecture.output_nodes"],
            );
        }
        self.int("architecture.vector_dim", a.vector_dim.into(), 1, 16);
        self.int("architecture.classes", a.classes.into(), 2, 1000);
    }

    fn resolution(&mut self, r: &Resolution) {
        self.int("resolution.phase_bins", r.phase_bins.into(), 2, 65536);
        self.int(
            "resolution.magnitude_bins",
            r.magnitude_bins.into(),
            2,
            65536,
        );
    }

    fn graph(&mut self, g: &GraphSource) {
        match g {
            GraphSource::Layered {
                cardinality,
                layers,
            } => {
                self.int("graph.cardinality", (*cardinality).into(), 1, 64);
                self.int("graph.layers", (*layers).into(), 1, 10_000);
            }
            GraphSource::EdgeList { path } => {
                if path.is_empty() {
                    self.push("graph.path", "\"\"", "must not be empty");
                }
            }
        }
    }

    fn forward(&mut self, f: &Forward, total_nodes: u32) {
        let max_ok = self.int("forward.max_timesteps", f.max_timesteps.into(), 2, 100_000);
        if let Some(min) = f.min_timesteps
            && (min < 1 || (max_ok && min > f.max_timesteps))
        {
            let hi = if max_ok {
                format!("max_timesteps ({})", f.max_timesteps)
            } else {
                "max_timesteps".to_string()
            };
            self.push_related(
                "forward.min_timesteps",
                min,
                format!("must be between 1 and {hi}"),
                &["forward.max_timesteps"],
            );
        }
        self.float("forward.decay", f.decay, 0.0, true, 1.0, false);
        self.float(
            "forward.min_strength",
            f.min_strength,
            0.0,
            true,
            1e6,
            false,
        );
        if let Some(target) = f.target_active
            && (target < 1 || target > total_nodes)
        {
            self.push_related(
                "forward.target_active",
                target,
                format!("must be between 1 and total_nodes ({total_nodes})"),
                &["architecture.total_nodes"],
            );
        }
        let t = &f.tau;
        self.float_at_least("forward.tau.growth", t.growth, 0.0);
        self.float(
            "forward.tau.low_fraction",
            t.low_fraction,
            0.0,
            true,
            1.0,
            false,
        );
        self.float("forward.tau.shrink", t.shrink, 0.0, true, 1.0, false);
        self.float(
            "forward.tau.flood_fraction",
            t.flood_fraction,
            0.0,
            true,
            1.0,
            false,
        );
        self.float_at_least("forward.tau.flood_factor", t.flood_factor, 1.0);
        let min_ok = self.finite("forward.tau.min", t.min);
        let max_ok = self.finite("forward.tau.max", t.max);
        if min_ok && max_ok && !(t.min > 0.0 && t.min <= t.max) {
            self.push_related(
                "forward.tau.min",
                fmt_f32(t.min),
                format!(
                    "must be greater than 0 and at most forward.tau.max ({})",
                    fmt_f32(t.max)
                ),
                &["forward.tau.max"],
            );
        }
    }

    fn radiation(&mut self, r: &Radiation, s: &Scene) {
        let total = s.architecture.total_nodes;
        if self.int("radiation.top_k", r.top_k.into(), 1, 256) && r.top_k >= total {
            self.push_related(
                "radiation.top_k",
                r.top_k,
                format!("must be less than total_nodes ({total})"),
                &["architecture.total_nodes"],
            );
        }
        if let Err(message) = r.backend.check() {
            self.push("radiation.backend", format!("{:?}", r.backend), message);
        }
        let c = &r.cache;
        self.int("radiation.cache.capacity", c.capacity.into(), 1, 10_000_000);
        let bins = s.resolution.phase_bins;
        if c.quantization < 1 || c.quantization > bins {
            self.push_related(
                "radiation.cache.quantization",
                c.quantization,
                format!("must be between 1 and phase_bins ({bins})"),
                &["resolution.phase_bins"],
            );
        }
        self.int(
            "radiation.cache.max_staleness",
            c.max_staleness.into(),
            0,
            1_000_000,
        );
        // An approximate cache answers from whatever an earlier lookup stored, so results
        // depend on the order samples meet it; replicas would split that order.
        let approximate = c.quantization > 1 || c.max_staleness > 0;
        let worlds = [
            ("schedule.eval_replicas", s.schedule.eval_replicas),
            ("schedule.train_worlds", s.schedule.train_worlds),
        ];
        for (field, count) in worlds {
            if c.enabled && approximate && count > 1 {
                self.push_related(
                    "radiation.cache.enabled",
                    c.enabled,
                    format!(
                        "the cache is approximate (quantization {}, max_staleness {}; exact is 1 \
                         and 0), so its answers depend on the order of lookups and it needs \
                         {field} = 1 (it is {count})",
                        c.quantization, c.max_staleness
                    ),
                    &[
                        "radiation.cache.quantization",
                        "radiation.cache.max_staleness",
                        field,
                    ],
                );
            }
        }
    }

    fn encodings(&mut self, s: &Scene) {
        let Encodings::Explicit { phase, magnitude } = &s.encodings else {
            return;
        };
        let classes = s.architecture.classes as usize;
        let dim = s.architecture.vector_dim as usize;
        let tables = [
            (
                "encodings.phase",
                phase,
                s.resolution.phase_bins,
                "phase_bins",
            ),
            (
                "encodings.magnitude",
                magnitude,
                s.resolution.magnitude_bins,
                "magnitude_bins",
            ),
        ];
        for (path, table, bins, bins_name) in tables {
            if table.len() != classes {
                self.push_related(
                    path,
                    "",
                    format!(
                        "must hold exactly classes ({classes}) vectors, found {}",
                        table.len()
                    ),
                    &["architecture.classes"],
                );
            }
            for (c, vector) in table.iter().enumerate() {
                let vpath = format!("{path}[{c}]");
                if vector.len() != dim {
                    self.push_related(
                        &vpath,
                        "",
                        format!(
                            "must hold exactly vector_dim ({dim}) values, found {}",
                            vector.len()
                        ),
                        &["architecture.vector_dim"],
                    );
                }
                for (d, &value) in vector.iter().enumerate() {
                    if value >= bins {
                        self.push_related(
                            &format!("{vpath}[{d}]"),
                            value,
                            format!("must be less than {bins_name} ({bins})"),
                            &[&format!("resolution.{bins_name}")],
                        );
                    }
                }
            }
        }
    }

    fn data(&mut self, d: &Data) {
        match &d.source {
            DataSource::Synthetic { train, test } => {
                self.int("data.source.train", (*train).into(), 1, 1_000_000);
                self.int("data.source.test", (*test).into(), 1, 1_000_000);
            }
            DataSource::Idx { dir } => {
                if dir.is_empty() {
                    self.push("data.source.dir", "\"\"", "must not be empty");
                }
            }
        }
        if let Some(limit) = d.train_limit {
            self.at_least("data.train_limit", limit.into(), 1);
        }
        if let Some(limit) = d.test_limit {
            self.at_least("data.test_limit", limit.into(), 1);
        }
        if let Some(k) = d.validation {
            self.at_least("data.validation", k.into(), 1);
        }
    }

    fn script(&mut self, script: &[Step]) {
        if script.is_empty() {
            self.push("script", "[]", "must hold at least one step");
        }
        for (i, step) in script.iter().enumerate() {
            match step {
                Step::Evaluate { samples, .. } => {
                    if let Some(n) = *samples {
                        self.at_least(&format!("script[{i}].samples"), n.into(), 1);
                    }
                }
                Step::Train {
                    epochs,
                    samples_per_epoch,
                    evaluate_every,
                } => {
                    self.int(&format!("script[{i}].epochs"), (*epochs).into(), 1, 100_000);
                    if let Some(n) = *samples_per_epoch {
                        self.at_least(&format!("script[{i}].samples_per_epoch"), n.into(), 1);
                    }
                    if let Some(n) = *evaluate_every {
                        let field = format!("script[{i}].evaluate_every");
                        self.int(&field, n.into(), 1, 10_000_000);
                    }
                }
                Step::Trace { samples, .. } => {
                    let field = format!("script[{i}].samples");
                    if samples.is_empty() || samples.len() > 1000 {
                        let shown = format!("{} indices", samples.len());
                        self.push(&field, shown, "must list 1 ..= 1000 sample indices");
                    }
                }
                Step::Checkpoint { path } | Step::Restore { path } => {
                    if path.is_empty() {
                        self.push(&format!("script[{i}].path"), "\"\"", "must not be empty");
                    }
                }
                Step::Set { field, value } => {
                    if let Err(message) = super::check_set_field(field) {
                        self.push(&format!("script[{i}].field"), format!("{field:?}"), message);
                    }
                    if value.trim().is_empty() {
                        self.push(
                            &format!("script[{i}].value"),
                            format!("{value:?}"),
                            "must not be empty",
                        );
                    }
                }
            }
        }
    }

    fn memory(&mut self, s: &Scene) {
        let estimate = s.memory_estimate();
        if estimate.total <= MEMORY_LIMIT {
            return;
        }
        let mut parts = estimate.parts.clone();
        parts.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
        let biggest: Vec<String> = parts
            .iter()
            .take(3)
            .map(|(name, bytes)| format!("{name} {}", format_bytes(*bytes)))
            .collect();
        let (path, value) = driver(s, parts[0].0);
        self.push(
            &path,
            value,
            format!(
                "estimated memory {} exceeds the {} limit; biggest parts: {}",
                format_bytes(estimate.total),
                format_bytes(MEMORY_LIMIT),
                biggest.join(", ")
            ),
        );
    }
}

/// The field that drives a memory part most, and its value, for the memory-limit message.
fn driver(s: &Scene, part: &str) -> (String, String) {
    let total = || {
        (
            "architecture.total_nodes".to_string(),
            s.architecture.total_nodes.to_string(),
        )
    };
    match part {
        "static edges" => match &s.graph {
            GraphSource::Layered { cardinality, .. } => {
                ("graph.cardinality".into(), cardinality.to_string())
            }
            GraphSource::EdgeList { .. } => total(),
        },
        "radiation" => ("radiation.top_k".into(), s.radiation.top_k.to_string()),
        "adapter weights" | "adapter scratch" | "state copies" => match s.adapter {
            Adapter::Mlp { hidden, .. } => ("adapter.hidden".into(), hidden.to_string()),
            Adapter::Linear => (
                "architecture.input_nodes".into(),
                s.architecture.input_nodes.to_string(),
            ),
        },
        "datasets" | "encoding caches" => match &s.data.source {
            DataSource::Synthetic { train, .. } => ("data.source.train".into(), train.to_string()),
            DataSource::Idx { dir } => ("data.source.dir".into(), format!("{dir:?}")),
        },
        "lookup tables" => (
            "resolution.magnitude_bins".into(),
            s.resolution.magnitude_bins.to_string(),
        ),
        _ => total(),
    }
}

fn between(lo: u64, hi: u64) -> String {
    format!("must be between {lo} and {hi}")
}

/// A float as RON writes it (`0.5`, `2.0`, `NaN`, `inf`).
pub(crate) fn fmt_f32(value: f32) -> String {
    if value.is_finite() && value == value.trunc() && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value:?}")
    }
}
