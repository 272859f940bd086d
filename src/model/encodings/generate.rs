//! Generating well-separated class encodings (SPEC 9, `Separated`): the projected-gradient
//! optimisation of unit directions, over all class pairs up to `ALL_PAIRS_CLASSES` classes
//! and over each class's most similar neighbours above, then quantisation to (φ, μ) indices
//! and a local-search polish. [`super::ClassEncodings::separated_by`] drives it.

use rayon::prelude::*;

use super::*;

/// Scales `v` to unit length (to the first axis if it is ~0).
pub(super) fn normalise(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n < 1e-12 {
        v.fill(0.0);
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// `Σ a_d·b_d`, added in index order starting from −0.0 (as `Iterator::sum` does).
#[inline]
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(-0.0, |s, (x, y)| s + x * y)
}

/// The C×D row-major vectors `u` dimension-major (D×C), for [`dots_with`].
pub(super) fn dimension_major(u: &[f64], classes: usize, dim: usize) -> Vec<f64> {
    (0..dim * classes)
        .map(|k| u[(k % classes) * dim + k / classes])
        .collect()
}

/// `out[t] = dot(x, v_{from + t})` for the vectors `v` given dimension-major in `by_dim` (D×C).
///
/// Each entry is added in the order and from the start [`dot`] uses, so it is `dot`'s value bit
/// for bit; running over the classes at each dimension lets the additions of different entries
/// proceed side by side (vectorised), several times faster than one `dot` after another.
pub(super) fn dots_with(x: &[f64], by_dim: &[f64], classes: usize, from: usize, out: &mut [f64]) {
    out.fill(-0.0);
    for (d, &xd) in x.iter().enumerate() {
        let column = &by_dim[d * classes + from..d * classes + from + out.len()];
        for (o, &y) in out.iter_mut().zip(column) {
            *o += xd * y;
        }
    }
}

/// Calls `f(i, row)` for every `width`-long row `i` of `out`: on rayon's pool when `parallel`,
/// else in order on this thread. Each row is computed alone, so the results are the same.
pub(super) fn each_row<T: Send>(
    out: &mut [T],
    width: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if parallel {
        out.par_chunks_mut(width)
            .enumerate()
            .for_each(|(i, row)| f(i, row));
    } else {
        out.chunks_mut(width)
            .enumerate()
            .for_each(|(i, row)| f(i, row));
    }
}

/// Writes into `out` the `out.len()` classes `j != i` with the largest `measure(j)` (ties to
/// the smaller index, so the choice is unique), in ascending order.
pub(super) fn most_similar(
    classes: usize,
    i: usize,
    measure: impl Fn(usize) -> f64,
    out: &mut [u32],
) {
    let mut all: Vec<(f64, u32)> = (0..classes)
        .filter(|&j| j != i)
        .map(|j| (measure(j), j as u32))
        .collect();
    let first = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if out.len() < all.len() {
        all.select_nth_unstable_by(out.len(), first);
    }
    for (o, &(_, j)) in out.iter_mut().zip(&all) {
        *o = j;
    }
    out.sort_unstable();
}

/// Projected gradient descent on the sphere (see `separated_by`); returns the final worst
/// pairwise measure over all pairs.
///
/// Class i's gradient is `Σ_j w(c_ij) u_j` over its list of classes, summed in ascending j:
/// with every other class listed (up to [`ALL_PAIRS_CLASSES`] classes) that is, term for term
/// and in the same order, the sum the all-pairs loop `for i < j { g_i += w u_j; g_j += w u_i }`
/// forms, so the result is that loop's.
pub(super) fn optimise(u: &mut [f64], classes: usize, dim: usize, criterion: Separation) -> f64 {
    if classes < 2 {
        return f64::NEG_INFINITY;
    }
    let all_pairs = classes <= ALL_PAIRS_CLASSES;
    let width = if all_pairs {
        classes - 1
    } else {
        NEIGHBOURS.min(classes - 1)
    };
    let parallel = classes * width * dim >= PARALLEL_WORK;
    let mut lists: Vec<u32> = vec![0; classes * width];
    if all_pairs {
        for (i, row) in lists.chunks_exact_mut(width).enumerate() {
            for (o, j) in row.iter_mut().zip((0..classes).filter(|&j| j != i)) {
                *o = j as u32;
            }
        }
    }
    let mut cos = vec![0.0f64; classes * width];
    let mut grad = vec![0.0f64; classes * dim];
    for k in 0..ITERATIONS {
        let by_dim = dimension_major(u, classes, dim);
        let uu: &[f64] = u;
        if !all_pairs && k % NEIGHBOUR_REFRESH == 0 {
            each_row(&mut lists, width, parallel, |i, out| {
                let mut row = vec![0.0f64; classes];
                dots_with(&uu[i * dim..(i + 1) * dim], &by_dim, classes, 0, &mut row);
                most_similar(classes, i, |j| criterion.measure(row[j]), out);
            });
        }
        let lists = &lists;
        each_row(&mut cos, width, parallel, |i, out| {
            let ui = &uu[i * dim..(i + 1) * dim];
            if all_pairs {
                // Every other class, in order: the classes before i, then those after.
                let (before, after) = out.split_at_mut(i);
                dots_with(ui, &by_dim, classes, 0, before);
                dots_with(ui, &by_dim, classes, i + 1, after);
            } else {
                for (c, &j) in out.iter_mut().zip(&lists[i * width..(i + 1) * width]) {
                    *c = dot(ui, &uu[j as usize * dim..(j as usize + 1) * dim]);
                }
            }
        });
        let worst = cos
            .iter()
            .fold(f64::NEG_INFINITY, |w, &c| w.max(criterion.measure(c)));
        // Normaliser of the weights: the weights are in [0, 1] so powers never overflow.
        let scale = match criterion {
            Separation::Angle => 1.0 + worst,
            Separation::Lines => worst,
        };
        if scale < 1e-12 {
            break; // already perfect (all antipodal / all orthogonal)
        }
        // p = 4·2^s with s from 0 to 6: p anneals from 4 to 256.
        let squarings = 2 + (7 * k / ITERATIONS).min(6) as u32;
        let cos = &cos;
        each_row(&mut grad, dim, parallel, |i, g| {
            g.fill(0.0);
            let listed = lists[i * width..(i + 1) * width].iter();
            for (&c, &j) in cos[i * width..(i + 1) * width].iter().zip(listed) {
                let w = criterion.weight(c, scale, squarings);
                let uj = &uu[j as usize * dim..(j as usize + 1) * dim];
                g.iter_mut().zip(uj).for_each(|(g, x)| *g += w * x);
            }
            let ui = &uu[i * dim..(i + 1) * dim];
            let r = dot(g, ui);
            g.iter_mut().zip(ui).for_each(|(g, x)| *g -= r * x);
        });
        let gmax = grad
            .chunks_exact(dim)
            .fold(0.0f64, |m, g| m.max(dot(g, g).sqrt()));
        if gmax < 1e-15 {
            break;
        }
        let eta = 0.15 * (1.0 - k as f64 / ITERATIONS as f64) + 0.002;
        let grad = &grad;
        each_row(u, dim, parallel, |i, ui| {
            let g = &grad[i * dim..(i + 1) * dim];
            ui.iter_mut().zip(g).for_each(|(x, g)| *x -= eta * g / gmax);
            normalise(ui);
        });
    }
    worst_pair(u, classes, dim, criterion, parallel)
}

/// The worst pairwise measure of the directions `u` (C×D) over all pairs.
pub(super) fn worst_pair(
    u: &[f64],
    classes: usize,
    dim: usize,
    criterion: Separation,
    parallel: bool,
) -> f64 {
    let by_dim = dimension_major(u, classes, dim);
    let mut worst = vec![f64::NEG_INFINITY; classes];
    each_row(&mut worst, 1, parallel, |i, w| {
        let mut later = vec![0.0f64; classes - i - 1];
        dots_with(
            &u[i * dim..(i + 1) * dim],
            &by_dim,
            classes,
            i + 1,
            &mut later,
        );
        w[0] = later
            .iter()
            .fold(f64::NEG_INFINITY, |w, &c| w.max(criterion.measure(c)));
    });
    worst.into_iter().fold(f64::NEG_INFINITY, f64::max)
}

/// Quantises unit directions (C×D) to index pairs: each direction is scaled so its largest
/// coordinate magnitude is `max amp`, and each coordinate y becomes the (φ, μ) minimising
/// `|cos[φ]·amp[μ] − y|` (φ restricted to `0..=N/2`, where cos is monotone; μ over all of
/// `0..M`, or 1024 evenly spaced values plus the argmax when M is larger; first best wins).
pub(super) fn quantise_directions(t: &Tables, u: &[f64], dim: usize) -> (Vec<u16>, Vec<u16>) {
    let m = t.magnitude_bins;
    let argmax = (0..m).fold(0, |b, j| if t.amp[j] > t.amp[b] { j } else { b });
    let amax = t.amp[argmax] as f64;
    let mut mus: Vec<usize> = (0..m).step_by(m.div_ceil(1024)).collect();
    if !mus.contains(&argmax) {
        mus.push(argmax);
    }
    let half = &t.cos[..=t.phase_bins / 2];
    let mut pairs = vec![(0u16, 0u16); u.len()];
    let parallel = u.len() * mus.len() >= PARALLEL_WORK;
    each_row(&mut pairs, dim, parallel, |i, out| {
        let row = &u[i * dim..(i + 1) * dim];
        let big = row.iter().fold(0.0f64, |b, x| b.max(x.abs())).max(1e-300);
        for (o, &x) in out.iter_mut().zip(row) {
            let y = x / big * amax;
            let mut best = (f64::INFINITY, 0usize, argmax);
            for &mu in &mus {
                let a = t.amp[mu];
                let want = y / a as f64;
                let idx = half.partition_point(|&c| c as f64 > want);
                for phi in [idx.saturating_sub(1), idx.min(half.len() - 1)] {
                    let err = ((half[phi] * a) as f64 - y).abs();
                    if err < best.0 {
                        best = (err, phi, mu);
                    }
                }
            }
            *o = (best.1 as u16, best.2 as u16);
        }
    });
    pairs.into_iter().unzip()
}

/// Discrete local search: try φ ± 1 (mod N) and μ ± 1 (clamped) for every class and
/// dimension, keeping a move when it lowers (worst pair measure, Σ soft score)
/// lexicographically on the f32 signals; repeats until no move helps or `POLISH_SWEEPS`.
pub(super) fn polish(
    t: &Tables,
    phase: &mut [u16],
    magnitude: &mut [u16],
    classes: usize,
    dim: usize,
    criterion: Separation,
) {
    if classes < 2 {
        return;
    }
    let mut sig = vec![0.0f32; classes * dim];
    t.signal_vec(phase, magnitude, &mut sig);
    let cos_of = |sig: &[f32], i: usize, j: usize| {
        cosine(&sig[i * dim..(i + 1) * dim], &sig[j * dim..(j + 1) * dim]) as f64
    };
    let mut cosm = vec![0.0f64; classes * classes];
    for i in 0..classes {
        for j in 0..classes {
            if i != j {
                cosm[i * classes + j] = cos_of(&sig, i, j);
            }
        }
    }
    // (worst, soft) of class c's row, combined with the score of all other pairs.
    let row_score = |row: &[f64], c: usize, base: (f64, f64)| {
        let (mut worst, mut soft) = base;
        for (j, &x) in row.iter().enumerate() {
            if j != c {
                worst = worst.max(criterion.measure(x));
                soft += criterion.soft(x);
            }
        }
        (worst, soft)
    };
    let (n, m) = (t.phase_bins as i64, t.magnitude_bins as i64);
    let mut row = vec![0.0f64; classes];
    for _ in 0..POLISH_SWEEPS {
        let mut improved = false;
        for c in 0..classes {
            // Score of the pairs not involving c.
            let mut base = (f64::NEG_INFINITY, 0.0f64);
            for i in (0..classes).filter(|&i| i != c) {
                for j in (i + 1..classes).filter(|&j| j != c) {
                    let x = cosm[i * classes + j];
                    base.0 = base.0.max(criterion.measure(x));
                    base.1 += criterion.soft(x);
                }
            }
            let mut current = row_score(&cosm[c * classes..(c + 1) * classes], c, base);
            for d in 0..dim {
                let k = c * dim + d;
                let (p0, m0) = (phase[k] as i64, magnitude[k] as i64);
                let moves = index_steps(p0, m0, n, m);
                for (p1, m1) in moves {
                    if (p1 as u16, m1 as u16) == (phase[k], magnitude[k]) {
                        continue;
                    }
                    let old = sig[k];
                    sig[k] = t.signal(p1 as u16, m1 as u16);
                    for (j, r) in row.iter_mut().enumerate() {
                        *r = if j == c { 0.0 } else { cos_of(&sig, c, j) };
                    }
                    let cand = row_score(&row, c, base);
                    if cand.0 < current.0 || (cand.0 == current.0 && cand.1 < current.1) {
                        current = cand;
                        phase[k] = p1 as u16;
                        magnitude[k] = m1 as u16;
                        for (j, &r) in row.iter().enumerate() {
                            cosm[c * classes + j] = r;
                            cosm[j * classes + c] = r;
                        }
                        improved = true;
                    } else {
                        sig[k] = old;
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// The discrete local search of [`polish`] for more than [`ALL_PAIRS_CLASSES`] classes, where
/// looking at every pair for every move costs C³ per sweep (see `separated_by`).
///
/// Class by class, the dot products of its signal with every other class's are computed and
/// its [`NEIGHBOURS`] most similar classes listed. A ±1 move is scored on the list: (worst
/// listed pair, Σ listed soft score), cosines in f64 from the f32 signals, each updated in O(1)
/// from the dot products. A move that lowers the score lexicographically is kept only if no
/// unlisted pair of the class is then worse than the listed worst, so the class's worst pair,
/// and with it the worst pair of all, never gets worse.
pub(super) fn polish_neighbours(
    t: &Tables,
    phase: &mut [u16],
    magnitude: &mut [u16],
    classes: usize,
    dim: usize,
    criterion: Separation,
) {
    let width = NEIGHBOURS.min(classes - 1);
    let mut sig32 = vec![0.0f32; classes * dim];
    t.signal_vec(phase, magnitude, &mut sig32);
    let mut sig: Vec<f64> = sig32.iter().map(|&x| x as f64).collect();
    // Dimension-major copy (D×C), for the passes over every class at one dimension.
    let mut by_dim = dimension_major(&sig, classes, dim);
    let mut inv_norm: Vec<f64> = sig.chunks_exact(dim).map(|v| 1.0 / norm_of(v)).collect();
    // Class c's dot product with every class (its own entry is not used).
    let mut dots = vec![0.0f64; classes];
    let mut listed = vec![0u32; width];
    let (n, m) = (t.phase_bins as i64, t.magnitude_bins as i64);
    for _ in 0..NEIGHBOUR_SWEEPS {
        let mut improved = false;
        for c in 0..classes {
            dots_with(&sig[c * dim..(c + 1) * dim], &by_dim, classes, 0, &mut dots);
            let inv_c = inv_norm[c];
            let measure = |j: usize| criterion.measure(dots[j] * inv_c * inv_norm[j]);
            most_similar(classes, c, measure, &mut listed);
            let mut current = {
                let column = &by_dim[..classes];
                listed_score(criterion, &listed, &dots, column, &inv_norm, 0.0, inv_c)
            };
            for d in 0..dim {
                let k = c * dim + d;
                let (p0, m0) = (phase[k] as i64, magnitude[k] as i64);
                let moves = index_steps(p0, m0, n, m);
                for (p1, m1) in moves {
                    if (p1 as u16, m1 as u16) == (phase[k], magnitude[k]) {
                        continue;
                    }
                    let x = t.signal(p1 as u16, m1 as u16) as f64;
                    let delta = x - sig[k];
                    let old = std::mem::replace(&mut sig[k], x);
                    let inv_c = 1.0 / norm_of(&sig[c * dim..(c + 1) * dim]);
                    sig[k] = old;
                    let column = &by_dim[d * classes..(d + 1) * classes];
                    let cand =
                        listed_score(criterion, &listed, &dots, column, &inv_norm, delta, inv_c);
                    if !(cand.0 < current.0 || (cand.0 == current.0 && cand.1 < current.1)) {
                        continue;
                    }
                    // Whether an unlisted class would then be more similar than the listed
                    // worst (no early exit, so the loop vectorises; it rarely finds one).
                    let above = |r: std::ops::Range<usize>| {
                        let pairs = dots[r.clone()].iter().zip(&column[r.clone()]);
                        pairs.zip(&inv_norm[r]).fold(false, |a, ((&dj, &y), &inv)| {
                            a | (criterion.measure((dj + delta * y) * inv_c * inv) > cand.0)
                        })
                    };
                    if above(0..c) || above(c + 1..classes) {
                        continue;
                    }
                    current = cand;
                    phase[k] = p1 as u16;
                    magnitude[k] = m1 as u16;
                    for (o, &y) in dots.iter_mut().zip(column) {
                        *o += delta * y;
                    }
                    sig[k] = x;
                    by_dim[d * classes + c] = x;
                    inv_norm[c] = inv_c;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// (worst measure, Σ soft score) of class c's pairs with the `listed` classes in
/// [`polish_neighbours`], if c's signal at one dimension changes by `delta` (`column`: every
/// class's signal at that dimension), giving c the inverse norm `inv_c`.
pub(super) fn listed_score(
    criterion: Separation,
    listed: &[u32],
    dots: &[f64],
    column: &[f64],
    inv_norm: &[f64],
    delta: f64,
    inv_c: f64,
) -> (f64, f64) {
    listed
        .iter()
        .fold((f64::NEG_INFINITY, 0.0), |(worst, soft), &j| {
            let j = j as usize;
            let x = (dots[j] + delta * column[j]) * inv_c * inv_norm[j];
            (worst.max(criterion.measure(x)), soft + criterion.soft(x))
        })
}

/// The Euclidean norm of `v`, at least 1e-12.
pub(super) fn norm_of(v: &[f64]) -> f64 {
    dot(v, v).sqrt().max(1e-12)
}

/// The ±1 index steps the polish tries from `(p, m)`: the phase wraps at `n`, the magnitude
/// stops at `0` and `m_bins − 1`.
fn index_steps(p: i64, m: i64, n: i64, m_bins: i64) -> [(i64, i64); 4] {
    [
        ((p + 1).rem_euclid(n), m),
        ((p - 1).rem_euclid(n), m),
        (p, (m + 1).min(m_bins - 1)),
        (p, (m - 1).max(0)),
    ]
}
