//! Forward stage: phase cells for every (source, target) pair, the excitatory filter, and
//! additive arrivals applied in a fixed order (SPEC 4 steps 2-4). The phase cell and the
//! arrival rules are [`crate::model::phase`] and [`crate::model::arrivals`].

#![expect(
    unsafe_code,
    reason = "the fused emission has an SSE4.1 loop behind runtime feature detection; every \
              unsafe block states what it relies on"
)]

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;

use super::Ctx;
use crate::model;
use crate::model::MAX_DIM;
use crate::model::arrivals::{ArrivalSums, Cells, Prior, inhibition_deactivates};
use crate::model::phase::phase_cell;
use crate::model::tables::Tables;
use crate::scene::Carry;
use crate::sim::components::{Activation, IndexVec};
use crate::sim::parallel;
use crate::sim::resources::{
    ActiveSnapshot, Arrivals, CurrentSample, Emissions, ForwardSettings, LoopState, NodeParams,
    PhasorArrivals, PhasorCarry, RadiationTargets, Topology, TrainingSettings, Workers,
};

/// What the emission stage needs besides its inputs: the worker settings, and for the fused
/// path the arrival sums it writes and whether this sample records a backprop tape.
#[derive(SystemParam)]
pub struct EmitContext<'w> {
    workers: Res<'w, Workers>,
    arrivals: ResMut<'w, Arrivals>,
    sample: Res<'w, CurrentSample>,
    training: Res<'w, TrainingSettings>,
}

/// The state `combine: Sum` arrivals start from, and the clamped node count: under
/// `carry: Replace` every target starts from zeros (`inactive` is reset to an all-inactive slot
/// map) and the inputs are clamped; otherwise targets start from the snapshot.
fn sum_prior<'a>(
    settings: &ForwardSettings,
    snapshot: &'a ActiveSnapshot,
    topology: &Topology,
    inactive: &'a mut Vec<u32>,
) -> (Prior<'a>, u32) {
    let replace = settings.carry == Carry::Replace;
    let slot_of: &[u32] = if replace {
        inactive.clear();
        inactive.resize(snapshot.slot_of.len(), u32::MAX);
        inactive
    } else {
        &snapshot.slot_of
    };
    let prior = Prior {
        slot_of,
        phase: &snapshot.phase,
        magnitude: &snapshot.magnitude,
        strength: &snapshot.strength,
    };
    let clamped = if replace {
        topology.graph.roles.inputs
    } else {
        0
    };
    (prior, clamped)
}

/// Computes the phase cell of every (source, target) pair of this timestep into
/// [`Emissions`]: static successors, then radiation targets, per source. Sources are split
/// between threads in contiguous runs; every cell has its own slot.
///
/// With `combine: Sum` on one thread and no backprop tape to record, nothing reads the cells
/// but the accumulation, so each cell is added to [`Arrivals`] as soon as it is computed, in
/// the same (emission) order, which gives the same sums without writing and re-reading the
/// buffer; [`accumulate_arrivals`] then has nothing left to do.
pub fn emit(
    snapshot: Res<ActiveSnapshot>,
    radiation: Res<RadiationTargets>,
    topology: Res<Topology>,
    params: Res<NodeParams>,
    mut emissions: ResMut<Emissions>,
    context: EmitContext,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let dim = ctx.settings.dim;
    let sources = snapshot.nodes.len();
    let EmitContext {
        workers,
        mut arrivals,
        sample,
        training,
    } = context;
    let em = &mut *emissions;
    let inputs = EmitInputs {
        snapshot: &snapshot,
        radiation: &radiation,
        topology: &topology,
        params: &params,
        tables: &ctx.tables.0,
    };
    let settings = &ctx.settings;
    em.fused = !em.keep
        && settings.phasor.is_none()
        && !super::backward::records_tape(&sample, &training)
        && parallel::split_ranges(sources, workers.threads, workers.batch_size).len() <= 1;
    if em.fused {
        for buffer in [&mut em.offsets, &mut em.target] {
            buffer.clear();
        }
        em.phase.clear();
        em.magnitude.clear();
        em.strength.clear();
        let Arrivals(sums, inactive) = &mut *arrivals;
        let (prior, clamped) = sum_prior(settings, &snapshot, &topology, inactive);
        let fused = Fused {
            prior,
            clamped,
            bins: (settings.phase_bins, settings.magnitude_bins),
            inhibition: settings.inhibition,
        };
        sums.begin(snapshot.slot_of.len(), dim);
        match dim {
            1 => fused_fixed::<1>(&inputs, &fused, sums),
            2 => fused_fixed::<2>(&inputs, &fused, sums),
            3 => fused_fixed::<3>(&inputs, &fused, sums),
            4 => fused_fixed::<4>(&inputs, &fused, sums),
            5 => fused_fixed::<5>(&inputs, &fused, sums),
            6 => fused_fixed::<6>(&inputs, &fused, sums),
            7 => fused_fixed::<7>(&inputs, &fused, sums),
            8 => fused_fixed::<8>(&inputs, &fused, sums),
            dim => fused_run(dim, &inputs, &fused, sums),
        }
        return;
    }
    em.offsets.clear();
    em.offsets.push(0);
    let mut total = 0u32;
    for (i, &u) in snapshot.nodes.iter().enumerate() {
        total += topology.graph.successors.row(u as usize).len() as u32;
        if radiation.k > 0 {
            total += radiation.counts[i];
        }
        em.offsets.push(total);
    }
    let total = total as usize;
    em.target.resize(total, 0);
    em.phase.resize(total * dim, 0);
    em.magnitude.resize(total * dim, 0);
    em.strength.resize(total, 0.0);
    let ranges = parallel::split_ranges(sources, workers.threads, workers.batch_size);
    let cells: Vec<usize> = ranges
        .iter()
        .map(|r| (em.offsets[r.end] - em.offsets[r.start]) as usize)
        .collect();
    let cells_dim: Vec<usize> = cells.iter().map(|c| c * dim).collect();
    let parts: Vec<_> = ranges
        .into_iter()
        .zip(parallel::split_by_lengths(&mut em.target, &cells))
        .zip(parallel::split_by_lengths(&mut em.phase, &cells_dim))
        .zip(parallel::split_by_lengths(&mut em.magnitude, &cells_dim))
        .zip(parallel::split_by_lengths(&mut em.strength, &cells))
        .map(
            |((((range, target), phase), magnitude), strength)| EmitPart {
                range,
                target,
                phase,
                magnitude,
                strength,
            },
        )
        .collect();
    parallel::run_parts(parts, |part| match dim {
        1 => emit_fixed::<1>(&inputs, part),
        2 => emit_fixed::<2>(&inputs, part),
        3 => emit_fixed::<3>(&inputs, part),
        4 => emit_fixed::<4>(&inputs, part),
        5 => emit_fixed::<5>(&inputs, part),
        6 => emit_fixed::<6>(&inputs, part),
        7 => emit_fixed::<7>(&inputs, part),
        8 => emit_fixed::<8>(&inputs, part),
        dim => emit_run(dim, &inputs, part),
    });
}

/// What the emission loop reads.
struct EmitInputs<'a> {
    snapshot: &'a ActiveSnapshot,
    radiation: &'a RadiationTargets,
    topology: &'a Topology,
    params: &'a NodeParams,
    tables: &'a Tables,
}

impl<'a> EmitInputs<'a> {
    /// Source `i`'s (node `u`'s) targets in emission order: its static successors, then its
    /// radiation targets.
    #[inline(always)]
    fn targets(&self, i: usize, u: u32) -> impl Iterator<Item = &'a u32> + use<'a> {
        let dynamic = if self.radiation.k > 0 {
            self.radiation.of(i)
        } else {
            &[]
        };
        let statics: &'a [u32] = self.topology.graph.successors.row(u as usize);
        statics.iter().chain(dynamic)
    }
}

/// One thread's share of the emissions: a run of sources and their cells' slots.
struct EmitPart<'a> {
    range: std::ops::Range<usize>,
    target: &'a mut [u32],
    phase: &'a mut [u16],
    magnitude: &'a mut [u16],
    strength: &'a mut [f32],
}

/// The emission loop with the dimension known at compile time, so the phase cell unrolls and
/// its strength sum stays in a register.
fn emit_fixed<const D: usize>(inputs: &EmitInputs<'_>, part: EmitPart<'_>) {
    emit_run(D, inputs, part);
}

#[inline(always)]
fn emit_run(dim: usize, inputs: &EmitInputs<'_>, part: EmitPart<'_>) {
    let EmitInputs {
        snapshot,
        params,
        tables,
        ..
    } = *inputs;
    let far = crate::prefetch::scattered(snapshot.slot_of.len());
    let mut c = 0;
    for i in part.range {
        if far {
            prefetch_targets(inputs, dim, i + 1, None);
        }
        let u = snapshot.nodes[i];
        let act_phase = &snapshot.phase[i * dim..(i + 1) * dim];
        let act_mag = &snapshot.magnitude[i * dim..(i + 1) * dim];
        for &v in inputs.targets(i, u) {
            let vk = v as usize;
            part.target[c] = v;
            part.strength[c] = phase_cell(
                tables,
                act_phase,
                act_mag,
                &params.phase[vk * dim..(vk + 1) * dim],
                &params.magnitude[vk * dim..(vk + 1) * dim],
                &mut part.phase[c * dim..(c + 1) * dim],
                &mut part.magnitude[c * dim..(c + 1) * dim],
            );
            c += 1;
        }
    }
}

/// Prefetches what emitting source `i` of the snapshot (if there is one) will read: its
/// targets' parameters and, when it is given, the arrival sums they will be added to. On a
/// large graph the targets are scattered over memory; asking one source ahead lets their cache
/// misses overlap the current source's work. A hint only: nothing computed changes.
#[inline(always)]
fn prefetch_targets(
    inputs: &EmitInputs<'_>,
    dim: usize,
    i: usize,
    sums: Option<(&ArrivalSums, &Prior<'_>)>,
) {
    let Some(&u) = inputs.snapshot.nodes.get(i) else {
        return;
    };
    for &v in inputs.targets(i, u) {
        let vk = v as usize;
        if let (Some(p), Some(m)) = (
            inputs.params.phase.get(vk * dim),
            inputs.params.magnitude.get(vk * dim),
        ) {
            crate::prefetch::prefetch(p);
            crate::prefetch::prefetch(m);
        }
        if let Some((sums, prior)) = sums {
            sums.prefetch(v, prior);
        }
    }
}

/// The accumulation rules the fused emission applies to each cell.
struct Fused<'a> {
    prior: Prior<'a>,
    clamped: u32,
    bins: (u32, u32),
    inhibition: crate::scene::Inhibition,
}

/// The fused emission with the dimension known at compile time: the SSE4.1 loop where the CPU
/// has it and both bin counts are at most 2¹⁵ (its modular adds need the sum of two indices
/// to fit 16 bits), the plain loop otherwise.
fn fused_fixed<const D: usize>(inputs: &EmitInputs<'_>, fused: &Fused<'_>, sums: &mut ArrivalSums) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sse4.1") && fused.bins.0 <= 1 << 15 && fused.bins.1 <= 1 << 15
    {
        // SAFETY: SSE4.1 was just detected; D <= 8 (the callers' dispatch).
        unsafe { fused_sse41::<D>(inputs, fused, sums) };
        return;
    }
    fused_run(D, inputs, fused, sums);
}

/// [`fused_run`] with a cell's D ≤ 8 phase and magnitude lanes in one 128-bit vector each: the
/// modular adds of the phase cell and of the accumulation are 3 instructions for all lanes
/// (`(a + b) min (a + b − N)`, unsigned), the target's sums are read and written 8 lanes at a
/// time (the lanes past D belong to the next node and get zeros added, which leaves them as
/// they were), and the strength is summed in dimension order as before, so every sum is
/// bit-identical to the plain loop's. A target whose 8 lanes would run past the end of the
/// arrays takes the plain path.
///
/// # Safety
/// The CPU must support SSE4.1, `D <= 8`, and both bin counts must be at most 2¹⁵.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1")]
fn fused_sse41<const D: usize>(inputs: &EmitInputs<'_>, fused: &Fused<'_>, sums: &mut ArrivalSums) {
    use std::arch::x86_64::*;
    let EmitInputs {
        snapshot,
        params,
        tables,
        ..
    } = *inputs;
    let (nbins, mbins) = fused.bins;
    let add_mod = |a: __m128i, b: __m128i, bins: __m128i| {
        let s = _mm_add_epi16(a, b);
        _mm_min_epu16(s, _mm_sub_epi16(s, bins))
    };
    let (nv, mv) = (
        _mm_set1_epi16(nbins as u16 as i16),
        _mm_set1_epi16(mbins as u16 as i16),
    );
    // Lanes 0..D set.
    let lanes: [u16; 8] = std::array::from_fn(|d| if d < D { u16::MAX } else { 0 });
    // SAFETY: an 8-lane read of a local array.
    let keep = unsafe { _mm_loadu_si128(lanes.as_ptr().cast()) };
    let far = crate::prefetch::scattered(snapshot.slot_of.len());
    let (mut cp, mut cm) = ([0u16; 8], [0u16; 8]);
    for (i, &u) in snapshot.nodes.iter().enumerate() {
        if far {
            prefetch_targets(inputs, D, i + 1, Some((sums, &fused.prior)));
        }
        let act_phase = &snapshot.phase[i * D..(i + 1) * D];
        let act_mag = &snapshot.magnitude[i * D..(i + 1) * D];
        let (mut ap, mut am) = ([0u16; 8], [0u16; 8]);
        ap[..D].copy_from_slice(act_phase);
        am[..D].copy_from_slice(act_mag);
        // SAFETY: 8-lane reads of local arrays.
        let (ap, am) = unsafe {
            (
                _mm_loadu_si128(ap.as_ptr().cast()),
                _mm_loadu_si128(am.as_ptr().cast()),
            )
        };
        for &v in inputs.targets(i, u) {
            let vk = v as usize;
            let end = vk * D + 8;
            if end > params.phase.len() || end > sums.phase.len() {
                // The last nodes: the plain cell.
                let s = phase_cell(
                    tables,
                    act_phase,
                    act_mag,
                    &params.phase[vk * D..(vk + 1) * D],
                    &params.magnitude[vk * D..(vk + 1) * D],
                    &mut cp[..D],
                    &mut cm[..D],
                );
                sums.add(
                    v,
                    s,
                    &cp[..D],
                    &cm[..D],
                    &fused.prior,
                    fused.bins,
                    fused.inhibition,
                    fused.clamped,
                );
                continue;
            }
            // SAFETY: lanes vk·D .. vk·D + 8 lie within both parameter arrays (checked).
            let (p, q) = unsafe {
                let pp = _mm_loadu_si128(params.phase.as_ptr().add(vk * D).cast());
                let pm = _mm_loadu_si128(params.magnitude.as_ptr().add(vk * D).cast());
                (
                    _mm_and_si128(add_mod(ap, pp, nv), keep),
                    _mm_and_si128(add_mod(am, pm, mv), keep),
                )
            };
            // SAFETY: 8-lane writes of local arrays.
            unsafe {
                _mm_storeu_si128(cp.as_mut_ptr().cast(), p);
                _mm_storeu_si128(cm.as_mut_ptr().cast(), q);
            }
            let mut s = 0.0f32;
            for d in 0..D {
                s += tables.cos[cp[d] as usize] * tables.amp[cm[d] as usize];
            }
            if v < fused.clamped || model::arrivals::gate_drops(fused.inhibition, s) {
                continue;
            }
            sums.touch(v, D, &fused.prior);
            // SAFETY: lanes vk·D .. vk·D + 8 lie within the sums' arrays (checked); the lanes
            // past D get zeros added, which leaves them unchanged.
            unsafe {
                let at_p = sums.phase.as_mut_ptr().add(vk * D).cast();
                let at_m = sums.magnitude.as_mut_ptr().add(vk * D).cast();
                _mm_storeu_si128(at_p, add_mod(_mm_loadu_si128(at_p), p, nv));
                _mm_storeu_si128(at_m, add_mod(_mm_loadu_si128(at_m), q, mv));
            }
            sums.strength[vk] += s;
        }
    }
}

/// Every cell of the timestep, in emission order, added to `sums` as it is computed. The loop
/// repeats [`emit_run`]'s on purpose: sharing it through a per-cell closure measured 15-20%
/// slower on this stage (emit 1.69-1.82 against 1.34-1.55 ms per production pass).
#[inline(always)]
fn fused_run(dim: usize, inputs: &EmitInputs<'_>, fused: &Fused<'_>, sums: &mut ArrivalSums) {
    let EmitInputs {
        snapshot,
        params,
        tables,
        ..
    } = *inputs;
    let (mut phase, mut magnitude) = ([0u16; MAX_DIM], [0u16; MAX_DIM]);
    let (phase, magnitude) = (&mut phase[..dim], &mut magnitude[..dim]);
    let far = crate::prefetch::scattered(snapshot.slot_of.len());
    for (i, &u) in snapshot.nodes.iter().enumerate() {
        if far {
            prefetch_targets(inputs, dim, i + 1, Some((sums, &fused.prior)));
        }
        let act_phase = &snapshot.phase[i * dim..(i + 1) * dim];
        let act_mag = &snapshot.magnitude[i * dim..(i + 1) * dim];
        for &v in inputs.targets(i, u) {
            let vk = v as usize;
            let s = phase_cell(
                tables,
                act_phase,
                act_mag,
                &params.phase[vk * dim..(vk + 1) * dim],
                &params.magnitude[vk * dim..(vk + 1) * dim],
                phase,
                magnitude,
            );
            sums.add(
                v,
                s,
                phase,
                magnitude,
                &fused.prior,
                fused.bins,
                fused.inhibition,
                fused.clamped,
            );
        }
    }
}

/// Accumulates all kept arrivals of this timestep: into [`Arrivals`] with `combine: Sum`
/// ([`model::arrivals::accumulate_arrivals`]: cells in emission order, each target starting from
/// its snapshot state, or from zeros under `carry: Replace`), or into [`PhasorArrivals`] with
/// `combine: Phasor` ([`model::phasor::accumulate`]: each target starting from its carried sums
/// while it stays active under `Accumulate`, from zeros otherwise). Under `Replace` the inputs
/// are clamped: arrivals into them are skipped.
pub fn accumulate_arrivals(
    snapshot: Res<ActiveSnapshot>,
    emissions: Res<Emissions>,
    mut arrivals: ResMut<Arrivals>,
    mut phasors: ResMut<PhasorArrivals>,
    carry: Res<PhasorCarry>,
    topology: Res<Topology>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    let replace = settings.carry == Carry::Replace;
    let clamped = if replace {
        topology.graph.roles.inputs
    } else {
        0
    };
    let cells = Cells {
        target: &emissions.target,
        phase: &emissions.phase,
        magnitude: &emissions.magnitude,
        strength: &emissions.strength,
    };
    if let Some(weight) = settings.phasor {
        let start = model::phasor::Start {
            carry: &carry.0,
            carried: (!replace).then_some(&snapshot.slot_of[..]),
            clamped,
        };
        model::phasor::accumulate(
            &ctx.tables.0,
            weight,
            cells,
            settings.dim,
            settings.inhibition,
            start,
            &mut phasors.0,
        );
        return;
    }
    if emissions.fused {
        // The emission stage already added every cell.
        return;
    }
    let Arrivals(sums, inactive) = &mut *arrivals;
    let (prior, clamped) = sum_prior(settings, &snapshot, &topology, inactive);
    model::arrivals::accumulate_arrivals(
        cells,
        prior,
        settings.dim,
        (settings.phase_bins, settings.magnitude_bins),
        settings.inhibition,
        clamped,
        sums,
    );
}

/// The sums a timestep's arrivals left, of either kind, and the phasor carry they update.
#[derive(bevy_ecs::system::SystemParam)]
pub struct TimestepSums<'w> {
    arrivals: Res<'w, Arrivals>,
    phasors: Res<'w, PhasorArrivals>,
    carry: ResMut<'w, PhasorCarry>,
}

/// Writes the accumulated arrivals into `Activation` components (inserting them on newly
/// active nodes) and records n, the active count after arrivals. With `combine: Sum` a node's
/// activation is its sums and a node the inhibition rule deactivates
/// ([`model::arrivals::inhibition_deactivates`]) is removed or left inactive; with `Phasor` it
/// is read from its phasor sums ([`model::phasor::read`]), σ being the mean weight, and the
/// sums are carried. Under `carry: Replace` an active node that received nothing is deactivated,
/// except the clamped inputs.
pub fn apply_arrivals(
    sums: TimestepSums,
    snapshot: Res<ActiveSnapshot>,
    topology: Res<Topology>,
    mut activations: Query<&mut Activation>,
    mut commands: Commands,
    mut state: ResMut<LoopState>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let TimestepSums {
        arrivals,
        phasors,
        mut carry,
    } = sums;
    let settings = &ctx.settings;
    let (dim, inhibition) = (settings.dim, settings.inhibition);
    let mut active = snapshot.nodes.len() as i64;
    let (list, touched) = match settings.phasor {
        Some(_) => (&phasors.0.list, &phasors.0.touched),
        None => (&arrivals.0.list, &arrivals.0.touched),
    };
    for &v in list {
        let vk = v as usize;
        if settings.silence_hidden && topology.graph.roles.is_hidden(v) {
            continue;
        }
        let entity = topology.entities[vk];
        let was_active = snapshot.slot_of[vk] != u32::MAX;
        let mut phase: IndexVec = Default::default();
        let mut magnitude: IndexVec = Default::default();
        let strength = match settings.phasor {
            None => {
                let sums = &arrivals.0;
                phase[..dim].copy_from_slice(&sums.phase[vk * dim..(vk + 1) * dim]);
                magnitude[..dim].copy_from_slice(&sums.magnitude[vk * dim..(vk + 1) * dim]);
                Some(sums.strength[vk]).filter(|&s| !inhibition_deactivates(inhibition, s))
            }
            Some(_) => {
                let row = &phasors.0.sums[vk * dim..(vk + 1) * dim];
                carry.0[vk * dim..(vk + 1) * dim].copy_from_slice(row);
                let mut weight = 0.0f32;
                let mut readable = true;
                for (d, &sum) in row.iter().enumerate() {
                    match model::phasor::read(sum, settings.phase_bins, settings.magnitude_bins) {
                        Some((p, m)) => (phase[d], magnitude[d]) = (p, m),
                        None => readable = false,
                    }
                    weight += sum.w;
                }
                readable.then_some(weight / dim as f32)
            }
        };
        let Some(strength) = strength else {
            if was_active {
                commands.entity(entity).remove::<Activation>();
                active -= 1;
            }
            continue;
        };
        let new = Activation {
            phase,
            magnitude,
            strength,
        };
        match activations.get_mut(entity) {
            Ok(mut a) => *a = new,
            Err(_) => {
                commands.entity(entity).insert(new);
                active += 1;
            }
        }
    }
    if settings.carry == Carry::Replace {
        let inputs = topology.graph.roles.inputs;
        for &u in &snapshot.nodes {
            if u >= inputs && !touched[u as usize] {
                commands
                    .entity(topology.entities[u as usize])
                    .remove::<Activation>();
                active -= 1;
            }
        }
    }
    state.active_after_arrivals = active as u32;
    state.active_sum += active as u64;
}

/// The settled pass ([`model::settle::settle`]): every node's final activation in one pass in
/// topological order, written into `Activation` components (the inputs keep the ones injected);
/// the loop state records the timesteps the loop would have run (`min_timesteps` when an output
/// is active, else the `max_timesteps` limit) and the settled active count as the mean.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters are its data access"
)]
pub fn settle(
    sample: Res<crate::sim::resources::CurrentSample>,
    topology: Res<Topology>,
    params: Res<NodeParams>,
    order: Res<crate::sim::resources::SettleOrder>,
    mut pass: ResMut<crate::sim::resources::SettledPass>,
    mut commands: Commands,
    mut state: ResMut<LoopState>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    let dim = settings.dim;
    let pass = &mut pass.0;
    model::settle::settle(
        &ctx.tables.0,
        settings.settle(),
        &topology.graph,
        &order.0,
        &params.phase,
        &params.magnitude,
        (&sample.phase, &sample.magnitude),
        pass,
    );
    let graph = &topology.graph;
    let mut active = (0..graph.roles.inputs as usize)
        .filter(|&k| pass.active[k])
        .count() as u32;
    let mut outputs = 0u32;
    for &v in &order.0.nodes {
        let vk = v as usize;
        if !pass.active[vk] {
            continue;
        }
        active += 1;
        outputs += u32::from(graph.roles.is_output(v));
        let mut phase: IndexVec = Default::default();
        let mut magnitude: IndexVec = Default::default();
        phase[..dim].copy_from_slice(&pass.phase[vk * dim..(vk + 1) * dim]);
        magnitude[..dim].copy_from_slice(&pass.magnitude[vk * dim..(vk + 1) * dim]);
        commands.entity(topology.entities[vk]).insert(Activation {
            phase,
            magnitude,
            strength: pass.strength[vk],
        });
    }
    let last = settings.max_timesteps.saturating_sub(1);
    let t = if outputs > 0 {
        settings.min_timesteps.min(last)
    } else {
        last
    };
    state.t = t;
    state.active_after_arrivals = active;
    state.active_sum = u64::from(active) * u64::from(t);
    state.active_now = active;
    state.outputs_active = outputs;
    state.settled = true;
}
