//! Trace files (`neurograph trace`, the `Trace` script step): the records of
//! [`crate::sim::trace`] for a few samples as Apache Arrow IPC files (read them with
//! `pandas.read_feather`, `polars.read_ipc` or `pyarrow.ipc.open_file`), a JSON summary and
//! an activity raster per sample.
//!
//! | file | one row per | columns |
//! |---|---|---|
//! | `steps.arrow` | sample × record | `sample, t, tau, active, sources, arrivals, kept` |
//! | `nodes.arrow` | sample × record × active node | `sample, t, node, strength, phase_0.., magnitude_0..` |
//! | `arrivals.arrow` | sample × record × arrival | `sample, t, source, target, radiation, strength, kept` |
//! | `outputs.arrow` | sample × record × output node | `sample, t, output, node, active, signal_0..` |
//!
//! `sample` is the index in its split and `t` the timesteps run when the record was taken (0:
//! after injection). `trace.json` holds, per sample, its label, prediction, logits and
//! timesteps, and the file list.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, RecordBatch, UInt16Array, UInt32Array};
use arrow_schema::{DataType, Field, Schema};

use crate::sim::trace::Trace;

/// A traced sample: its index in the split and its trace.
#[derive(Debug)]
pub struct Traced {
    /// Index in the split.
    pub index: usize,
    /// The label.
    pub label: u8,
    /// The trace.
    pub trace: Trace,
}

/// Columns under construction, in order.
#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    fn u32(&mut self, name: &str, v: Vec<u32>) {
        self.fields.push(Field::new(name, DataType::UInt32, false));
        self.arrays.push(Arc::new(UInt32Array::from(v)));
    }
    fn u16(&mut self, name: &str, v: Vec<u16>) {
        self.fields.push(Field::new(name, DataType::UInt16, false));
        self.arrays.push(Arc::new(UInt16Array::from(v)));
    }
    fn f32(&mut self, name: &str, v: Vec<f32>) {
        self.fields.push(Field::new(name, DataType::Float32, false));
        self.arrays.push(Arc::new(Float32Array::from(v)));
    }
    fn bool(&mut self, name: &str, v: Vec<bool>) {
        self.fields.push(Field::new(name, DataType::Boolean, false));
        self.arrays.push(Arc::new(BooleanArray::from(v)));
    }

    /// Writes the columns as one record batch in an Arrow IPC file, atomically.
    fn write(self, path: &Path) -> std::io::Result<()> {
        let schema = Arc::new(Schema::new(self.fields));
        let batch = RecordBatch::try_new(schema.clone(), self.arrays)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        crate::atomic::write_with(path, |w| {
            let mut writer = arrow_ipc::writer::FileWriter::try_new(w, &schema)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            writer
                .write(&batch)
                .and_then(|()| writer.finish())
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
    }
}

fn steps_table(traces: &[Traced]) -> Columns {
    let (mut sample, mut t, mut active) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sources, mut arrivals, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut tau = Vec::new();
    for tr in traces {
        for s in &tr.trace.steps {
            sample.push(tr.index as u32);
            t.push(s.t);
            tau.push(s.tau);
            active.push(s.active.iter().filter(|&&a| a).count() as u32);
            sources.push(s.sources.len() as u32);
            arrivals.push(s.arrivals.len() as u32);
            kept.push(s.arrivals.iter().filter(|a| a.kept).count() as u32);
        }
    }
    let mut c = Columns::default();
    c.u32("sample", sample);
    c.u32("t", t);
    c.f32("tau", tau);
    c.u32("active", active);
    c.u32("sources", sources);
    c.u32("arrivals", arrivals);
    c.u32("kept", kept);
    c
}

fn nodes_table(traces: &[Traced], dim: usize) -> Columns {
    let (mut sample, mut t, mut node, mut strength) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut phase: Vec<Vec<u16>> = vec![Vec::new(); dim];
    let mut magnitude: Vec<Vec<u16>> = vec![Vec::new(); dim];
    for tr in traces {
        for s in &tr.trace.steps {
            for (k, _) in s.active.iter().enumerate().filter(|(_, a)| **a) {
                sample.push(tr.index as u32);
                t.push(s.t);
                node.push(k as u32);
                strength.push(s.strength[k]);
                for d in 0..dim {
                    phase[d].push(s.phase[k * dim + d]);
                    magnitude[d].push(s.magnitude[k * dim + d]);
                }
            }
        }
    }
    let mut c = Columns::default();
    c.u32("sample", sample);
    c.u32("t", t);
    c.u32("node", node);
    c.f32("strength", strength);
    for (d, v) in phase.into_iter().enumerate() {
        c.u16(&format!("phase_{d}"), v);
    }
    for (d, v) in magnitude.into_iter().enumerate() {
        c.u16(&format!("magnitude_{d}"), v);
    }
    c
}

fn arrivals_table(traces: &[Traced]) -> Columns {
    let mut c = Columns::default();
    let rows = || {
        traces
            .iter()
            .flat_map(|tr| tr.trace.steps.iter().map(move |s| (tr.index as u32, s)))
            .flat_map(|(i, s)| s.arrivals.iter().map(move |a| (i, s.t, *a)))
    };
    c.u32("sample", rows().map(|r| r.0).collect());
    c.u32("t", rows().map(|r| r.1).collect());
    c.u32("source", rows().map(|r| r.2.source).collect());
    c.u32("target", rows().map(|r| r.2.target).collect());
    c.bool("radiation", rows().map(|r| r.2.radiation).collect());
    c.f32("strength", rows().map(|r| r.2.strength).collect());
    c.bool("kept", rows().map(|r| r.2.kept).collect());
    c
}

fn outputs_table(traces: &[Traced], first_output: usize, dim: usize) -> Columns {
    let (mut sample, mut t, mut output, mut node, mut active) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut signal: Vec<Vec<f32>> = vec![Vec::new(); dim];
    for tr in traces {
        for s in &tr.trace.steps {
            for (o, sig) in s.output_signals.chunks_exact(dim).enumerate() {
                sample.push(tr.index as u32);
                t.push(s.t);
                output.push(o as u32);
                node.push((first_output + o) as u32);
                active.push(s.active[first_output + o]);
                for d in 0..dim {
                    signal[d].push(sig[d]);
                }
            }
        }
    }
    let mut c = Columns::default();
    c.u32("sample", sample);
    c.u32("t", t);
    c.u32("output", output);
    c.u32("node", node);
    c.bool("active", active);
    for (d, v) in signal.into_iter().enumerate() {
        c.f32(&format!("signal_{d}"), v);
    }
    c
}

/// What [`write`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceFiles {
    /// The directory.
    pub dir: PathBuf,
    /// The files, in `dir`.
    pub files: Vec<String>,
}

/// Writes the tables, `trace.json` and a raster per sample into `dir`; `first_output` is the
/// first output node and `layers` the graph's hidden layer sizes (for the raster's bands).
pub fn write(
    dir: &Path,
    traces: &[Traced],
    first_output: usize,
    layers: &[u32],
    summary: serde_json::Value,
) -> std::io::Result<TraceFiles> {
    std::fs::create_dir_all(dir)?;
    let dim = traces.first().map_or(1, |t| t.trace.dim);
    let mut files = Vec::new();
    for (name, table) in [
        ("steps.arrow", steps_table(traces)),
        ("nodes.arrow", nodes_table(traces, dim)),
        ("arrivals.arrow", arrivals_table(traces)),
        ("outputs.arrow", outputs_table(traces, first_output, dim)),
    ] {
        table.write(&dir.join(name))?;
        files.push(name.to_string());
    }
    for tr in traces {
        let name = format!("raster-{}.svg", tr.index);
        let svg = super::raster::render(tr, first_output, layers);
        crate::atomic::write(&dir.join(&name), svg.as_bytes())?;
        files.push(name);
        // The network at the record with the most radiation arrivals (else the last one).
        let steps = &tr.trace.steps;
        let radiation = |j: usize| steps[j].arrivals.iter().filter(|a| a.radiation).count();
        let j = (0..steps.len())
            .max_by_key(|&j| (radiation(j), std::cmp::Reverse(j)))
            .filter(|&j| radiation(j) > 0)
            .unwrap_or(steps.len().saturating_sub(1));
        let name = format!("network-{}.svg", tr.index);
        let svg = super::raster::render_network(tr, j, first_output, layers);
        crate::atomic::write(&dir.join(&name), svg.as_bytes())?;
        files.push(name);
    }
    let samples: Vec<serde_json::Value> = traces
        .iter()
        .map(|tr| {
            serde_json::json!({
                "sample": tr.index,
                "label": tr.label,
                "prediction": tr.trace.outcome.prediction,
                "logits": tr.trace.outcome.logits,
                "timesteps": tr.trace.outcome.timesteps,
                "records": tr.trace.steps.len(),
                "settled": tr.trace.settled,
            })
        })
        .collect();
    files.push("trace.json".into());
    let json = serde_json::json!({
        "summary": summary,
        "dim": dim,
        "top_k": traces.first().map_or(0, |t| t.trace.top_k),
        "samples": samples,
        "files": files,
    });
    crate::atomic::write(
        &dir.join("trace.json"),
        serde_json::to_string_pretty(&json)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    Ok(TraceFiles {
        dir: dir.to_path_buf(),
        files,
    })
}

impl super::Runner {
    /// Traces samples `indices` of `split` on the primary world (evaluation passes: no
    /// dropout, parameters unchanged).
    pub fn trace_samples(
        &mut self,
        split: crate::scene::Split,
        indices: &[usize],
    ) -> Result<Vec<Traced>, String> {
        let n = self.set(split).len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(format!(
                "sample {bad} is not in the {} split, which has {n} samples (0 ..= {})",
                super::split_name(split),
                n.saturating_sub(1)
            ));
        }
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let (p, m) = self.cached_encoding(split, i);
            let label = self.set(split).label(i);
            let trace = self.sim.trace_encoded(&p, &m, label);
            out.push(Traced {
                index: i,
                label,
                trace,
            });
        }
        Ok(out)
    }

    /// Traces samples `indices` of `split` and writes the trace files into `dir`.
    pub fn write_trace(
        &mut self,
        dir: &Path,
        split: crate::scene::Split,
        indices: &[usize],
    ) -> Result<TraceFiles, String> {
        let traces = self.trace_samples(split, indices)?;
        let graph = &self
            .sim
            .world()
            .resource::<crate::sim::resources::Topology>()
            .graph;
        let first_output = (graph.roles.total - graph.roles.outputs) as usize;
        let layers = graph.layer_sizes.clone();
        let summary = serde_json::json!({
            "scene": self.scene.name,
            "seed": self.scene.seed,
            "split": super::split_name(split),
            "samples_seen": self.state.samples_seen,
            "epochs_done": self.state.epochs_done,
        });
        write(dir, &traces, first_output, &layers, summary)
            .map_err(|e| format!("cannot write the trace in {}: {e}", dir.display()))
    }
}
