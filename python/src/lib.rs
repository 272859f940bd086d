//! `neurograph._native`: the library's scenes and runs for Python. The `neurograph` package
//! (python/neurograph/__init__.py) wraps it; reports cross the boundary as the same JSON the
//! command line writes, arrays as numpy arrays.
//!
//! Long calls (training, evaluation, scripts, forward passes, traces) run with the GIL released
//! on a worker thread while the calling thread checks for Ctrl-C every 20 ms; an interrupt
//! stops the work after its current sample (the run's state stays consistent) and raises
//! `KeyboardInterrupt`. Every error is a Python exception: `SceneError` for scene text,
//! `NeurographError` for the rest; pyo3 turns a panic into `PanicException`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use neurograph::run::{RunError, Runner};
use neurograph::scene::{self, Split};

create_exception!(
    neurograph,
    NeurographError,
    PyException,
    "A run, checkpoint, data or export error."
);
create_exception!(
    neurograph,
    SceneError,
    NeurographError,
    "A scene that does not parse or validate; the message names file, line, column and field."
);

fn err(e: impl std::fmt::Display) -> PyErr {
    NeurographError::new_err(e.to_string())
}

/// A parsed and validated scene.
#[pyclass(frozen, module = "neurograph._native")]
struct Scene {
    inner: scene::Scene,
}

#[pymethods]
impl Scene {
    /// The resolved scene as RON (every field, defaults filled in).
    fn to_ron(&self) -> String {
        self.inner.to_ron()
    }

    /// The scene's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// The scene's seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// A copy with `FIELD=VALUE` assignments applied (the command line's `--set`).
    fn with_sets(&self, sets: Vec<String>) -> PyResult<Scene> {
        let mut inner = self.inner.clone();
        inner
            .apply_sets(&sets)
            .map_err(|e| SceneError::new_err(e.to_string()))?;
        Ok(Scene { inner })
    }

    fn __repr__(&self) -> String {
        format!(
            "Scene(name={:?}, seed={})",
            self.inner.name, self.inner.seed
        )
    }
}

/// Loads a scene file and applies `FIELD=VALUE` assignments.
#[pyfunction]
#[pyo3(signature = (path, sets = Vec::new()))]
fn load_scene(path: PathBuf, sets: Vec<String>) -> PyResult<Scene> {
    let mut inner = scene::load(&path).map_err(|e| SceneError::new_err(e.to_string()))?;
    inner
        .apply_sets(&sets)
        .map_err(|e| SceneError::new_err(e.to_string()))?;
    Ok(Scene { inner })
}

/// Parses scene text; `origin` names it in error messages.
#[pyfunction]
#[pyo3(signature = (text, origin = "<string>".to_string()))]
fn parse_scene(text: &str, origin: String) -> PyResult<Scene> {
    scene::parse(text, &origin)
        .map(|inner| Scene { inner })
        .map_err(|e| SceneError::new_err(e.to_string()))
}

/// A run of a scene: its world, data and reports.
#[pyclass(frozen, module = "neurograph._native")]
struct Run {
    runner: Mutex<Runner>,
}

/// Runs `work` on the run with the GIL released, on a worker thread, while this thread checks
/// for signals; an interrupt sets the runner's flag and is raised once the worker stopped.
fn long<T: Send>(
    py: Python<'_>,
    run: &Run,
    work: impl FnOnce(&mut Runner) -> T + Send,
) -> PyResult<T> {
    py.detach(|| {
        let mut runner = run.runner.lock().unwrap_or_else(|p| p.into_inner());
        let flag = runner.interrupt_flag();
        flag.store(false, Ordering::SeqCst);
        let mut signal: Option<PyErr> = None;
        let target: &mut Runner = &mut runner;
        let out = std::thread::scope(|scope| {
            let worker = scope.spawn(move || work(target));
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(20));
                if signal.is_none()
                    && let Err(e) = Python::attach(|py| py.check_signals())
                {
                    signal = Some(e);
                    flag.store(true, Ordering::SeqCst);
                }
            }
            worker.join()
        });
        flag.store(false, Ordering::SeqCst);
        match (signal, out) {
            (Some(e), _) => Err(e),
            (None, Ok(v)) => Ok(v),
            (None, Err(_)) => Err(err("the run's worker thread panicked")),
        }
    })
}

/// Quick calls: the run locked with the GIL released (so a thread in a long call never waits
/// for the GIL while holding the run).
fn quick<T: Send>(py: Python<'_>, run: &Run, work: impl FnOnce(&mut Runner) -> T + Send) -> T {
    py.detach(|| work(&mut run.runner.lock().unwrap_or_else(|p| p.into_inner())))
}

fn split_of(name: &str) -> PyResult<Split> {
    match name {
        "test" => Ok(Split::Test),
        "train" | "training" => Ok(Split::Train),
        "validation" => Ok(Split::Validation),
        other => Err(PyValueError::new_err(format!(
            "split must be \"test\", \"train\" or \"validation\", got {other:?}"
        ))),
    }
}

fn json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(err)
}

fn run_error(e: RunError) -> PyErr {
    err(neurograph::run::chain_text(&e))
}

/// Images as one contiguous `(n, pixels)` byte buffer, checked against the model's size.
fn image_bytes(images: &PyReadonlyArray3<'_, u8>, pixels: usize) -> PyResult<(usize, Vec<u8>)> {
    let shape = images.shape();
    let (n, h, w) = (shape[0], shape[1], shape[2]);
    if h * w != pixels {
        return Err(PyValueError::new_err(format!(
            "images are {h}x{w} ({} pixels) but the model takes {pixels} pixels",
            h * w
        )));
    }
    let bytes = images.as_array().iter().copied().collect();
    Ok((n, bytes))
}

#[pymethods]
impl Run {
    /// Builds the run: loads the scene's data and builds its world. With `out`, reports,
    /// curves and relative checkpoint paths go to that directory, as with `neurograph run
    /// --out`.
    #[new]
    #[pyo3(signature = (scene, out = None, quiet = true))]
    fn new(
        py: Python<'_>,
        scene: &Bound<'_, Scene>,
        out: Option<PathBuf>,
        quiet: bool,
    ) -> PyResult<Run> {
        let scene = scene.get().inner.clone();
        let runner = py.detach(|| -> Result<Runner, String> {
            let runner = Runner::new(&scene, quiet).map_err(|e| neurograph::run::chain_text(&e))?;
            match out {
                Some(dir) => runner
                    .with_output(&dir)
                    .map_err(|e| neurograph::run::chain_text(&e)),
                None => Ok(runner),
            }
        });
        Ok(Run {
            runner: Mutex::new(runner.map_err(err)?),
        })
    }

    /// Trains `epochs` epochs; the epochs' metrics as JSON (a list).
    #[pyo3(signature = (epochs = 1, samples_per_epoch = None))]
    fn _train(
        &self,
        py: Python<'_>,
        epochs: u32,
        samples_per_epoch: Option<u32>,
    ) -> PyResult<String> {
        let metrics = long(py, self, |r| r.train_epochs(epochs, samples_per_epoch))?;
        json(&metrics.map_err(run_error)?)
    }

    /// Evaluates a split; the evaluation as JSON.
    #[pyo3(signature = (split = "test", samples = None))]
    fn _evaluate(&self, py: Python<'_>, split: &str, samples: Option<u32>) -> PyResult<String> {
        let split = split_of(split)?;
        let e = long(py, self, |r| r.evaluate(split, samples))?;
        json(&e.map_err(err)?)
    }

    /// Runs the scene's script; the report as JSON (what `neurograph run --json` prints).
    fn _script(&self, py: Python<'_>) -> PyResult<String> {
        let report = long(py, self, |r| r.run_script())?;
        json(&report.map_err(run_error)?)
    }

    /// Forward passes (no dropout, parameters unchanged) of `(n, h, w)` uint8 images:
    /// predictions `(n,)` int64 (-1: no active output), logits `(n, classes)` float32 (NaN
    /// rows without an active output) and timesteps `(n,)` uint32.
    #[expect(
        clippy::type_complexity,
        reason = "three numpy arrays, as the docs say"
    )]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        images: PyReadonlyArray3<'py, u8>,
    ) -> PyResult<(
        Bound<'py, numpy::PyArray1<i64>>,
        Bound<'py, numpy::PyArray2<f32>>,
        Bound<'py, numpy::PyArray1<u32>>,
    )> {
        let pixels = quick(py, self, |r| r.sim().pixels());
        let (n, bytes) = image_bytes(&images, pixels)?;
        let (preds, classes) = long(py, self, |r| {
            let flag = r.interrupt_flag();
            let classes = r.scene().architecture.classes as usize;
            let preds = neurograph::run::predict::predict(r.sim_mut(), &bytes, None, |_| {
                !flag.load(Ordering::Relaxed)
            });
            (preds, classes)
        })?;
        let mut prediction = Array1::<i64>::from_elem(n, -1);
        let mut logits = Array2::<f32>::from_elem((n, classes), f32::NAN);
        let mut timesteps = Array1::<u32>::zeros(n);
        for p in &preds {
            prediction[p.index] = p.prediction.map_or(-1, i64::from);
            timesteps[p.index] = p.timesteps;
            for (c, z) in p.logits.iter().enumerate() {
                logits[(p.index, c)] = *z;
            }
        }
        Ok((
            prediction.into_pyarray(py),
            logits.into_pyarray(py),
            timesteps.into_pyarray(py),
        ))
    }

    /// The per-timestep state of one `(h, w)` uint8 image's forward pass (see the package's
    /// `Run.trace`).
    #[pyo3(signature = (image, label = 0))]
    fn trace<'py>(
        &self,
        py: Python<'py>,
        image: PyReadonlyArray2<'py, u8>,
        label: u8,
    ) -> PyResult<Bound<'py, PyDict>> {
        let pixels = quick(py, self, |r| r.sim().pixels());
        let shape = image.shape();
        if shape[0] * shape[1] != pixels {
            return Err(PyValueError::new_err(format!(
                "the image is {}x{} but the model takes {pixels} pixels",
                shape[0], shape[1]
            )));
        }
        let bytes: Vec<u8> = image.as_array().iter().copied().collect();
        let (trace, n, outputs) = long(py, self, |r| {
            let n = r.scene().architecture.total_nodes as usize;
            let outputs = r.scene().architecture.output_nodes as usize;
            (r.sim_mut().trace_image(&bytes, label), n, outputs)
        })?;
        let (steps, dim) = (trace.steps.len(), trace.dim);
        let d = PyDict::new(py);
        let t: Vec<u32> = trace.steps.iter().map(|s| s.t).collect();
        let tau: Vec<f32> = trace.steps.iter().map(|s| s.tau).collect();
        let flat = |f: &dyn Fn(&neurograph::sim::trace::TraceStep) -> Vec<f32>| -> Vec<f32> {
            trace.steps.iter().flat_map(f).collect()
        };
        let active: Vec<bool> = trace.steps.iter().flat_map(|s| s.active.clone()).collect();
        let phase: Vec<i32> = trace
            .steps
            .iter()
            .flat_map(|s| s.phase.iter().map(|&v| i32::from(v)))
            .collect();
        let magnitude: Vec<i32> = trace
            .steps
            .iter()
            .flat_map(|s| s.magnitude.iter().map(|&v| i32::from(v)))
            .collect();
        let shape_err = |e: numpy::ndarray::ShapeError| err(e);
        d.set_item("t", Array1::from(t).into_pyarray(py))?;
        d.set_item("tau", Array1::from(tau).into_pyarray(py))?;
        d.set_item(
            "active",
            Array2::from_shape_vec((steps, n), active)
                .map_err(shape_err)?
                .into_pyarray(py),
        )?;
        d.set_item(
            "phase",
            Array3::from_shape_vec((steps, n, dim), phase)
                .map_err(shape_err)?
                .into_pyarray(py),
        )?;
        d.set_item(
            "magnitude",
            Array3::from_shape_vec((steps, n, dim), magnitude)
                .map_err(shape_err)?
                .into_pyarray(py),
        )?;
        d.set_item(
            "strength",
            Array2::from_shape_vec((steps, n), flat(&|s| s.strength.clone()))
                .map_err(shape_err)?
                .into_pyarray(py),
        )?;
        d.set_item(
            "output_signals",
            Array3::from_shape_vec((steps, outputs, dim), flat(&|s| s.output_signals.clone()))
                .map_err(shape_err)?
                .into_pyarray(py),
        )?;
        let k = trace.top_k;
        let mut sources = Vec::with_capacity(steps);
        let mut targets = Vec::with_capacity(steps);
        for s in &trace.steps {
            sources.push(Array1::from(s.sources.clone()).into_pyarray(py));
            let rows = s.radiation_targets.len().checked_div(k).unwrap_or(0);
            let as_i64: Vec<i64> = s
                .radiation_targets
                .iter()
                .map(|&v| if v == u32::MAX { -1 } else { i64::from(v) })
                .collect();
            targets.push(
                Array2::from_shape_vec((rows, k), as_i64)
                    .map_err(shape_err)?
                    .into_pyarray(py),
            );
        }
        let mut arrivals = Vec::with_capacity(steps);
        for st in &trace.steps {
            let a = PyDict::new(py);
            let col = |f: fn(&neurograph::sim::trace::TraceArrival) -> u32| -> Vec<u32> {
                st.arrivals.iter().map(f).collect()
            };
            a.set_item("source", Array1::from(col(|x| x.source)).into_pyarray(py))?;
            a.set_item("target", Array1::from(col(|x| x.target)).into_pyarray(py))?;
            let radiation: Vec<bool> = st.arrivals.iter().map(|x| x.radiation).collect();
            a.set_item("radiation", Array1::from(radiation).into_pyarray(py))?;
            let strength: Vec<f32> = st.arrivals.iter().map(|x| x.strength).collect();
            a.set_item("strength", Array1::from(strength).into_pyarray(py))?;
            let kept: Vec<bool> = st.arrivals.iter().map(|x| x.kept).collect();
            a.set_item("kept", Array1::from(kept).into_pyarray(py))?;
            arrivals.push(a);
        }
        d.set_item("arrivals", arrivals)?;
        d.set_item("sources", sources)?;
        d.set_item("radiation_targets", targets)?;
        d.set_item(
            "logits",
            Array1::from(trace.outcome.logits.clone()).into_pyarray(py),
        )?;
        d.set_item("prediction", trace.outcome.prediction.map_or(-1, i64::from))?;
        d.set_item("timesteps", trace.outcome.timesteps)?;
        d.set_item("settled", trace.settled)?;
        d.set_item("top_k", k)?;
        Ok(d)
    }

    /// `(phase, magnitude)` of every node as int32 arrays `(nodes, D)`.
    #[expect(clippy::type_complexity, reason = "two numpy arrays")]
    fn parameters<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, numpy::PyArray2<i32>>,
        Bound<'py, numpy::PyArray2<i32>>,
    )> {
        let (phase, magnitude, dim) = quick(py, self, |r| {
            let (p, m) = r.sim_mut().parameters();
            (p, m, r.sim().settings().dim)
        });
        let to = |v: Vec<u16>| -> PyResult<Array2<i32>> {
            Array2::from_shape_vec(
                (v.len() / dim.max(1), dim),
                v.into_iter().map(i32::from).collect(),
            )
            .map_err(err)
        };
        Ok((to(phase)?.into_pyarray(py), to(magnitude)?.into_pyarray(py)))
    }

    /// Replaces every node's parameters from int64 arrays `(nodes, D)`; values must lie in
    /// `0..phase_bins` and `0..magnitude_bins`. Takes effect at the next sample.
    fn _set_parameters(
        &self,
        py: Python<'_>,
        phase: PyReadonlyArray2<'_, i64>,
        magnitude: PyReadonlyArray2<'_, i64>,
    ) -> PyResult<()> {
        let (n, dim, pb, mb) = quick(py, self, |r| {
            let s = r.scene();
            (
                s.architecture.total_nodes as usize,
                s.architecture.vector_dim as usize,
                i64::from(s.resolution.phase_bins),
                i64::from(s.resolution.magnitude_bins),
            )
        });
        let mut rows = Vec::with_capacity(2);
        for (what, a, bins) in [("phase", &phase, pb), ("magnitude", &magnitude, mb)] {
            if a.shape() != [n, dim] {
                return Err(PyValueError::new_err(format!(
                    "{what} must have shape ({n}, {dim}), got {:?}",
                    a.shape()
                )));
            }
            let mut v = Vec::with_capacity(n * dim);
            for (i, &x) in a.as_array().iter().enumerate() {
                if !(0..bins).contains(&x) {
                    return Err(PyValueError::new_err(format!(
                        "{what}[{}, {}] = {x} is outside 0..{bins} (0 ..= {})",
                        i / dim,
                        i % dim,
                        bins - 1
                    )));
                }
                v.push(x as u16);
            }
            rows.push(v);
        }
        let (p, m) = (&rows[0], &rows[1]);
        quick(py, self, |r| {
            let sim = r.sim_mut();
            for k in 0..n {
                sim.set_params(k, &p[k * dim..(k + 1) * dim], &m[k * dim..(k + 1) * dim]);
            }
        });
        Ok(())
    }

    /// The static graph: CSR successors (`indptr` int64 `(nodes + 1,)`, `indices` int32) and
    /// the role counts.
    fn graph<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (offsets, items, roles, layers) = quick(py, self, |r| {
            let g = &r
                .sim()
                .world()
                .resource::<neurograph::sim::resources::Topology>()
                .graph;
            (
                g.successors.offsets.clone(),
                g.successors.items.clone(),
                g.roles,
                g.layer_sizes.clone(),
            )
        });
        let d = PyDict::new(py);
        let indptr: Vec<i64> = offsets.into_iter().map(i64::from).collect();
        let indices: Vec<i32> = items.into_iter().map(|i| i as i32).collect();
        d.set_item("indptr", Array1::from(indptr).into_pyarray(py))?;
        d.set_item("indices", Array1::from(indices).into_pyarray(py))?;
        d.set_item("nodes", roles.total)?;
        d.set_item("inputs", roles.inputs)?;
        d.set_item("outputs", roles.outputs)?;
        d.set_item("layer_sizes", layers)?;
        Ok(d)
    }

    /// Saves the run's whole state to `path` (the format of a `Checkpoint` step).
    fn checkpoint(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        quick(py, self, |r| {
            let next = r.script_position();
            r.save_checkpoint(&path, next)
        })
        .map_err(err)
    }

    /// Restores the run's state from `path`; returns what was restored as JSON.
    fn _restore(&self, py: Python<'_>, path: PathBuf) -> PyResult<String> {
        let note = quick(py, self, |r| {
            let step = r.script_position();
            r.restore_checkpoint(&path, step)
        })
        .map_err(err)?;
        json(&note)
    }

    /// Writes the model as safetensors (the tensors of `neurograph export`).
    fn export(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        quick(py, self, |r| {
            let (seen, epochs) = (r.samples_seen(), r.epochs_done());
            let scene = r.scene().clone();
            let meta = neurograph::export::metadata(r.sim(), &scene, seen, epochs);
            let tensors = neurograph::export::tensors(r.sim_mut());
            neurograph::export::write(&path, &tensors, meta)
        })
        .map_err(err)
    }

    /// A split's images `(n, h, w)` uint8 and labels `(n,)` uint8, as the run loaded them
    /// (after `data.train_limit` / `data.test_limit` / `data.validation`).
    #[expect(clippy::type_complexity, reason = "two numpy arrays")]
    fn data<'py>(
        &self,
        py: Python<'py>,
        split: &str,
    ) -> PyResult<(
        Bound<'py, numpy::PyArray3<u8>>,
        Bound<'py, numpy::PyArray1<u8>>,
    )> {
        let split = split_of(split)?;
        let set = quick(py, self, |r| match split {
            Split::Train => r.data().train.clone(),
            Split::Test => r.data().test.clone(),
            Split::Validation => r.data().validation.clone(),
        });
        let n = set.labels.len();
        let images = Array3::from_shape_vec((n, set.rows, set.cols), set.images).map_err(err)?;
        Ok((
            images.into_pyarray(py),
            Array1::from(set.labels).into_pyarray(py),
        ))
    }

    /// The scene as the run holds it now (after `Set` steps or restores).
    #[getter]
    fn scene(&self, py: Python<'_>) -> Scene {
        Scene {
            inner: quick(py, self, |r| r.scene().clone()),
        }
    }

    /// Training epochs completed.
    #[getter]
    fn epochs_done(&self, py: Python<'_>) -> u32 {
        quick(py, self, |r| r.epochs_done())
    }

    /// Training samples run so far.
    #[getter]
    fn samples_seen(&self, py: Python<'_>) -> u64 {
        quick(py, self, |r| r.samples_seen())
    }

    /// The training log so far (every finished epoch's metrics) as JSON.
    fn _training_log(&self, py: Python<'_>) -> PyResult<String> {
        let log = quick(py, self, |r| r.training_log().to_vec());
        json(&log)
    }
}

/// The library's scenes and runs.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("NeurographError", m.py().get_type::<NeurographError>())?;
    m.add("SceneError", m.py().get_type::<SceneError>())?;
    m.add_class::<Scene>()?;
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(load_scene, m)?)?;
    m.add_function(wrap_pyfunction!(parse_scene, m)?)?;
    Ok(())
}
