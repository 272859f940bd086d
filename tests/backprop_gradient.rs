//! SPEC 11 `training.credit: Backprop` on a whole small graph: the gradient the simulation
//! computes (record the tape, read-out gradient, reverse pass) against central finite
//! differences of an independent f64 reference of the same forward pass.
//!
//! The reference makes the straight-through rules differentiable: every rounding (and every
//! `mod`) of the discrete pass is replaced by `x + (round(x₀) − x₀)` with `x₀` its value at the
//! base parameters, so at the base point it computes exactly the discrete pass, and its
//! derivative is the straight-through one. The gate, the activity masks and the radiation
//! targets are held fixed at their base values, as SPEC 11 says; tables are the continuous
//! functions they sample.

use std::f64::consts::{PI, TAU};

use neurograph::scene::{
    Carry, Combine, CreditSetting, Encodings, OptimizerSetting, PhasorWeight, ReadoutSetting, Scene,
};
use neurograph::sim::Simulation;
use neurograph::sim::resources::{BackpropTape, Topology};

const N: u32 = 64;
const M: u32 = 65;
const DIM: usize = 2;

fn scene(combine: Combine, carry: Carry, radiation: bool) -> Scene {
    let mut s = Scene {
        seed: 11,
        ..Scene::default()
    };
    s.architecture.total_nodes = 24;
    s.architecture.input_nodes = 5;
    s.architecture.output_nodes = 6;
    s.architecture.vector_dim = DIM as u32;
    s.architecture.classes = 3;
    s.resolution.phase_bins = N;
    s.resolution.magnitude_bins = M;
    s.graph = neurograph::scene::GraphSource::Layered {
        cardinality: 3,
        layers: 3,
    };
    s.forward.combine = combine;
    s.forward.carry = carry;
    s.forward.min_timesteps = Some(5);
    s.forward.max_timesteps = 10;
    // The timestep loop and its tape (the settled pass is checked beside it).
    s.forward.settle = false;
    // Nothing is evicted (τ stays tiny), so the reference needs no eviction rule.
    s.forward.min_strength = 1e-9;
    s.forward.tau.min = 1e-9;
    s.forward.tau.max = 1e-9;
    s.radiation.enabled = radiation;
    s.radiation.top_k = 2;
    s.radiation.cache.enabled = false;
    s.loss.readout = ReadoutSetting::Grouped;
    s.loss.temperature = 0.5;
    s.training.credit = CreditSetting::Backprop;
    s.training.optimizer = OptimizerSetting::Adam {
        lr: 1.0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        decay: 1.0,
    };
    s.training.learn_encodings = true;
    s.encodings = Encodings::Explicit {
        phase: vec![vec![3, 40], vec![20, 9], vec![50, 30]],
        magnitude: vec![vec![10, 50], vec![33, 20], vec![60, 5]],
    };
    s.adapter = neurograph::scene::Adapter::Linear;
    s.schedule.threads = 1;
    s
}

fn amp(mu: f64) -> f64 {
    (-PI + TAU * mu / f64::from(M - 1)).sin().exp()
}

/// Straight-through roundings: recorded at the base point, replayed as constant offsets.
struct Rounding {
    record: bool,
    offsets: Vec<f64>,
    at: usize,
}

impl Rounding {
    /// `discrete(x)` at the base point; `x + offset` elsewhere.
    fn apply(&mut self, x: f64, discrete: impl Fn(f64) -> f64) -> f64 {
        if self.record {
            let v = discrete(x);
            self.offsets.push(v - x);
            v
        } else {
            let v = x + self.offsets[self.at];
            self.at += 1;
            v
        }
    }
}

/// What the reference holds fixed from the base pass.
struct Fixed {
    /// Kept (gate) per cell, in visiting order.
    kept: Vec<bool>,
}

struct Reference {
    combine: Combine,
    carry: Carry,
    n: usize,
    inputs: usize,
    first_output: usize,
    classes: usize,
    temperature: f64,
    label: usize,
    /// Per timestep, per source (ascending), the targets in emission order (static first).
    targets: Vec<Vec<(u32, Vec<u32>)>>,
    input_phase: Vec<f64>,
    input_magnitude: Vec<f64>,
}

/// Parameters as reals: node phases, node magnitudes, encoding phases, encoding magnitudes.
fn split(theta: &[f64], n: usize, classes: usize) -> (&[f64], &[f64], &[f64], &[f64]) {
    let (p, rest) = theta.split_at(n * DIM);
    let (m, rest) = rest.split_at(n * DIM);
    let (ep, em) = rest.split_at(classes * DIM);
    (p, m, ep, em)
}

fn wrap(bins: u32) -> impl Fn(f64) -> f64 {
    move |x| x.round().rem_euclid(f64::from(bins))
}

impl Reference {
    fn loss(&self, theta: &[f64], r: &mut Rounding, fixed: &mut Fixed) -> f64 {
        let (tp, tm, ep, em) = split(theta, self.n, self.classes);
        let n = self.n;
        let phasor = matches!(self.combine, Combine::Phasor { .. });
        let mut active = vec![false; n];
        let mut phase = vec![0.0f64; n * DIM];
        let mut magnitude = vec![0.0f64; n * DIM];
        // Carried phasor sums (Accumulate): z (x, y) and w per node and dimension.
        let mut carry = vec![(0.0f64, 0.0f64, 0.0f64); n * DIM];
        for k in 0..self.inputs {
            active[k] = true;
            for d in 0..DIM {
                let (p, m) = (
                    self.input_phase[k * DIM + d],
                    self.input_magnitude[k * DIM + d],
                );
                phase[k * DIM + d] = p;
                magnitude[k * DIM + d] = m;
                let rho = (1.0 + amp(m).ln()) / 2.0;
                let a = TAU * p / f64::from(N);
                carry[k * DIM + d] = (rho * a.cos(), rho * a.sin(), 1.0);
            }
        }
        let mut cell = 0;
        for step in &self.targets {
            let sources: Vec<u32> = (0..n as u32).filter(|&u| active[u as usize]).collect();
            assert_eq!(
                sources,
                step.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
                "the reference's active set differs from the simulation's"
            );
            let mut touched = vec![false; n];
            let mut order = Vec::new();
            let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); n * DIM];
            let mut sum_p = vec![0.0f64; n * DIM];
            let mut sum_m = vec![0.0f64; n * DIM];
            for (u, targets) in step {
                let uk = *u as usize;
                for &v in targets {
                    let vk = v as usize;
                    let mut po = [0.0f64; DIM];
                    let mut mo = [0.0f64; DIM];
                    for d in 0..DIM {
                        po[d] = r.apply(phase[uk * DIM + d] + tp[vk * DIM + d], wrap(N));
                        mo[d] = r.apply(magnitude[uk * DIM + d] + tm[vk * DIM + d], wrap(M));
                    }
                    let s: f64 = (0..DIM)
                        .map(|d| (TAU * po[d] / f64::from(N)).cos() * amp(mo[d]))
                        .sum();
                    if r.record {
                        fixed.kept.push(s > 0.0);
                    }
                    let kept = fixed.kept[cell];
                    cell += 1;
                    if !kept || (self.carry == Carry::Replace && vk < self.inputs) {
                        continue;
                    }
                    if !touched[vk] {
                        touched[vk] = true;
                        order.push(vk);
                        let carried = self.carry == Carry::Accumulate && active[vk];
                        for d in 0..DIM {
                            let i = vk * DIM + d;
                            sums[i] = if carried { carry[i] } else { (0.0, 0.0, 0.0) };
                            (sum_p[i], sum_m[i]) = if carried {
                                (phase[i], magnitude[i])
                            } else {
                                (0.0, 0.0)
                            };
                        }
                    }
                    for d in 0..DIM {
                        let i = vk * DIM + d;
                        let w = match self.combine {
                            Combine::Phasor {
                                weight: PhasorWeight::Strength,
                            } => s.max(0.0),
                            Combine::Phasor {
                                weight: PhasorWeight::Uniform,
                            } => 1.0,
                            Combine::Phasor {
                                weight: PhasorWeight::Magnitude,
                            } => amp(mo[d]),
                            Combine::Sum => 0.0,
                        };
                        let a = TAU * po[d] / f64::from(N);
                        sums[i].0 += w * a.cos();
                        sums[i].1 += w * a.sin();
                        sums[i].2 += w;
                        sum_p[i] += po[d];
                        sum_m[i] += mo[d];
                    }
                }
            }
            if self.carry == Carry::Replace {
                active[self.inputs..].fill(false);
            }
            for &v in &order {
                active[v] = true;
                for d in 0..DIM {
                    let i = v * DIM + d;
                    if phasor {
                        let (x, y, w) = sums[i];
                        carry[i] = sums[i];
                        phase[i] = r.apply(f64::from(N) / TAU * y.atan2(x), wrap(N));
                        let c = (2.0 * (x * x + y * y).sqrt() / w - 1.0).clamp(-0.999, 0.999);
                        magnitude[i] = r.apply(f64::from(M - 1) / TAU * (PI + c.asin()), |x| {
                            x.round().clamp(0.0, f64::from(M - 1))
                        });
                    } else {
                        phase[i] = r.apply(sum_p[i], wrap(N));
                        magnitude[i] = r.apply(sum_m[i], wrap(M));
                    }
                }
            }
        }
        // Grouped read-out over the active outputs.
        let signal = |p: f64, m: f64| (TAU * p / f64::from(N)).cos() * amp(m);
        let mut z = vec![0.0f64; self.classes];
        let mut count = vec![0usize; self.classes];
        for k in self.first_output..n {
            if !active[k] {
                continue;
            }
            let c = (k - self.first_output) % self.classes;
            let so: Vec<f64> = (0..DIM)
                .map(|d| signal(phase[k * DIM + d], magnitude[k * DIM + d]))
                .collect();
            let e: Vec<f64> = (0..DIM)
                .map(|d| signal(ep[c * DIM + d], em[c * DIM + d]))
                .collect();
            let dot: f64 = so.iter().zip(&e).map(|(a, b)| a * b).sum();
            let na = so.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-8);
            let nb = e.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-8);
            z[c] += dot / (na * nb);
            count[c] += 1;
        }
        for c in 0..self.classes {
            if count[c] > 0 {
                z[c] /= count[c] as f64;
            }
        }
        let scaled: Vec<f64> = z.iter().map(|x| x / self.temperature).collect();
        let max = scaled.iter().cloned().fold(f64::MIN, f64::max);
        let log_sum = scaled.iter().map(|x| (x - max).exp()).sum::<f64>().ln() + max;
        log_sum - scaled[self.label]
    }
}

/// Runs one training sample in the simulation and compares its gradient with the reference's
/// finite differences. Returns how many node-parameter entries had a nonzero gradient.
fn check(combine: Combine, carry: Carry, radiation: bool) -> usize {
    let scene = scene(combine, carry, radiation);
    let mut sim = Simulation::for_images(&scene, 16).unwrap();
    let n = scene.architecture.total_nodes as usize;
    let classes = scene.architecture.classes as usize;
    let inputs = scene.architecture.input_nodes as usize;
    // An input encoding with varied indices.
    let len = inputs * DIM;
    let input_phase: Vec<u16> = (0..len)
        .map(|i| ((i * 37 + 5) % N as usize) as u16)
        .collect();
    let input_magnitude: Vec<u16> = (0..len)
        .map(|i| ((i * 23 + 11) % M as usize) as u16)
        .collect();
    let label = 1u8;
    let outcome = sim.train_encoded(&input_phase, &input_magnitude, label);
    assert!(outcome.prediction.is_some(), "no output active");
    let analytic = sim.sample_gradient().to_vec();
    // Without radiation, `Phasor` + `Replace` runs as the settled pass unless told otherwise:
    // its gradient must match the same finite differences.
    let settled = {
        let mut scene = scene.clone();
        scene.forward.settle = true;
        let mut twin = Simulation::for_images(&scene, 16).unwrap();
        let outcome_twin = twin.train_encoded(&input_phase, &input_magnitude, label);
        assert_eq!(outcome_twin.prediction, outcome.prediction);
        assert_eq!(outcome_twin.loss, outcome.loss, "settled pass loss");
        twin.settings()
            .settled
            .then(|| twin.sample_gradient().to_vec())
    };
    let (phase, magnitude) = sim.parameters();
    let world = sim.world();
    let tape = &world.resource::<BackpropTape>().tape;
    let graph = &world.resource::<Topology>().graph;
    let mut targets = Vec::new();
    for step in tape.recorded() {
        let mut per_source = Vec::new();
        for (i, &u) in step.sources.iter().enumerate() {
            let cells = &step.target[step.offsets[i] as usize..step.offsets[i + 1] as usize];
            let statics = graph.successors.row(u as usize);
            assert_eq!(
                &cells[..statics.len()],
                statics,
                "static targets come first"
            );
            if !radiation {
                assert_eq!(cells.len(), statics.len());
            }
            per_source.push((u, cells.to_vec()));
        }
        targets.push(per_source);
    }
    assert_eq!(targets.len(), outcome.timesteps as usize);
    let encodings = world
        .resource::<neurograph::sim::resources::Encodings>()
        .0
        .clone();
    let reference = Reference {
        combine,
        carry,
        n,
        inputs,
        first_output: n - scene.architecture.output_nodes as usize,
        classes,
        temperature: f64::from(scene.loss.temperature),
        label: label as usize,
        targets,
        input_phase: input_phase.iter().map(|&x| f64::from(x)).collect(),
        input_magnitude: input_magnitude.iter().map(|&x| f64::from(x)).collect(),
    };
    let theta: Vec<f64> = phase
        .iter()
        .chain(&magnitude)
        .chain(&encodings.phase)
        .chain(&encodings.magnitude)
        .map(|&x| f64::from(x))
        .collect();
    let mut fixed = Fixed { kept: Vec::new() };
    let mut rounding = Rounding {
        record: true,
        offsets: Vec::new(),
        at: 0,
    };
    let base = reference.loss(&theta, &mut rounding, &mut fixed);
    let loss = f64::from(outcome.loss.unwrap());
    assert!(
        (base - loss).abs() < 1e-4 * (1.0 + loss.abs()),
        "{combine:?} {carry:?}: reference loss {base} vs simulation {loss}"
    );
    // Some phase or magnitude sum wrapped (an offset of a whole turn), so the straight-through
    // `mod` at the wrap is part of what the finite differences check.
    assert!(
        rounding.offsets.iter().any(|o| o.abs() > 1.0),
        "no sum wrapped at N or M"
    );
    rounding.record = false;
    let h = 1e-4;
    let mut numeric = vec![0.0f64; theta.len()];
    for i in 0..theta.len() {
        let mut t = theta.clone();
        t[i] += h;
        rounding.at = 0;
        let up = reference.loss(&t, &mut rounding, &mut fixed);
        t[i] -= 2.0 * h;
        rounding.at = 0;
        let down = reference.loss(&t, &mut rounding, &mut fixed);
        numeric[i] = (up - down) / (2.0 * h);
    }
    assert_eq!(analytic.len(), numeric.len());
    let norm = numeric.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(norm > 1e-3, "the finite-difference gradient is zero");
    for (i, (&a, &f)) in analytic.iter().zip(&numeric).enumerate() {
        let tolerance = 2e-3 * norm.max(1.0) + 2e-3 * f.abs();
        assert!(
            (f64::from(a) - f).abs() <= tolerance,
            "{combine:?} {carry:?} radiation {radiation}: entry {i} analytic {a} vs finite \
             difference {f} (norm {norm})"
        );
    }
    if let Some(settled) = &settled {
        for (i, (&a, &f)) in settled.iter().zip(&numeric).enumerate() {
            let tolerance = 2e-3 * norm.max(1.0) + 2e-3 * f.abs();
            assert!(
                (f64::from(a) - f).abs() <= tolerance,
                "settled pass, {combine:?}: entry {i} analytic {a} vs finite difference {f}"
            );
        }
    }
    assert_eq!(
        settled.is_some(),
        matches!(combine, Combine::Phasor { .. }) && carry == Carry::Replace && !radiation,
        "the settled pass runs exactly when it applies"
    );
    // The gradient reaches hidden nodes, not only the outputs.
    let first_output = n - scene.architecture.output_nodes as usize;
    let hidden = (inputs * DIM..first_output * DIM)
        .chain(n * DIM + inputs * DIM..n * DIM + first_output * DIM)
        .filter(|&i| numeric[i].abs() > 1e-6)
        .count();
    assert!(hidden > 0, "no hidden parameter has a gradient");
    hidden
}

#[test]
fn phasor_strength_replace_gradient_matches_finite_differences() {
    check(
        Combine::Phasor {
            weight: PhasorWeight::Strength,
        },
        Carry::Replace,
        false,
    );
}

#[test]
fn phasor_strength_replace_with_radiation_gradient_matches_finite_differences() {
    check(
        Combine::Phasor {
            weight: PhasorWeight::Strength,
        },
        Carry::Replace,
        true,
    );
}

#[test]
fn phasor_accumulate_with_radiation_gradient_matches_finite_differences() {
    check(
        Combine::Phasor {
            weight: PhasorWeight::Strength,
        },
        Carry::Accumulate,
        true,
    );
}

// `Uniform` is left to the unit checks in `model::phasor`: two unit arrivals at integer bins
// sum to an angle exactly half-way between them, so whole-graph rounding ties at .5 bins are
// common and f32 and f64 break them differently.
#[test]
fn phasor_magnitude_weight_gradient_matches_finite_differences() {
    check(
        Combine::Phasor {
            weight: PhasorWeight::Magnitude,
        },
        Carry::Replace,
        true,
    );
}

#[test]
fn sum_gradients_match_finite_differences_in_both_carry_modes() {
    for carry in [Carry::Replace, Carry::Accumulate] {
        check(Combine::Sum, carry, true);
    }
}
