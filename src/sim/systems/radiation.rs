//! Radiation stage: snapshot the active set, then exact top-K targets for every active source.

use bevy_ecs::prelude::*;

use crate::radiation::{self as kernel, Scratch, Source};
use crate::sim::components::{Activation, Node};
use crate::sim::parallel;
use crate::sim::resources::{
    ActiveSnapshot, ForwardSettings, LookupTables, NodeParams, RadiationTargets, Stage, StageClock,
    Topology, Workers,
};

/// Gathers the active nodes, ascending by index, into the [`ActiveSnapshot`].
pub fn gather_active(
    active: Query<(&Node, &Activation)>,
    mut snapshot: ResMut<ActiveSnapshot>,
    settings: Res<ForwardSettings>,
    clock: Res<StageClock>,
) {
    let _t = clock.time_system(Stage::Radiation, "radiation::gather_active");
    let dim = settings.dim;
    let snap = &mut *snapshot;
    let mut listed: Vec<(u32, &Activation)> = active.iter().map(|(n, a)| (n.index, a)).collect();
    listed.sort_unstable_by_key(|&(k, _)| k);
    snap.nodes.clear();
    snap.phase.clear();
    snap.magnitude.clear();
    snap.strength.clear();
    snap.slot_of.clear();
    snap.slot_of.resize(settings.total_nodes as usize, u32::MAX);
    for (i, (k, a)) in listed.into_iter().enumerate() {
        snap.nodes.push(k);
        snap.phase.extend_from_slice(&a.phase[..dim]);
        snap.magnitude.extend_from_slice(&a.magnitude[..dim]);
        snap.strength.push(a.strength);
        snap.slot_of[k as usize] = i as u32;
    }
}

/// Computes the radiation targets of every active source (exact top-K, SPEC 5), in parallel
/// over contiguous runs of sources; each source's targets land in its own slots, so the result
/// does not depend on the thread count.
#[expect(
    clippy::too_many_arguments,
    reason = "a bevy system names each resource it reads"
)]
pub fn radiate(
    snapshot: Res<ActiveSnapshot>,
    params: Res<NodeParams>,
    topology: Res<Topology>,
    tables: Res<LookupTables>,
    settings: Res<ForwardSettings>,
    mut targets: ResMut<RadiationTargets>,
    mut workers: ResMut<Workers>,
    clock: Res<StageClock>,
) {
    let _t = clock.time_system(Stage::Radiation, "radiation::radiate");
    let k = if settings.radiation {
        settings.top_k
    } else {
        0
    };
    let sources = snapshot.nodes.len();
    let targets = &mut *targets;
    targets.k = k;
    targets.targets.clear();
    targets.targets.resize(sources * k, u32::MAX);
    targets.counts.clear();
    targets.counts.resize(sources, 0);
    if k == 0 || sources == 0 {
        return;
    }
    let dim = settings.dim;
    let Workers {
        threads,
        batch_size,
        scratch,
    } = &mut *workers;
    let ranges = parallel::split_ranges(sources, *threads, *batch_size);
    if scratch.len() < ranges.len() {
        scratch.resize_with(ranges.len(), Scratch::default);
    }
    let lengths: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let slot_lengths: Vec<usize> = lengths.iter().map(|n| n * k).collect();
    let parts: Vec<_> = ranges
        .into_iter()
        .zip(parallel::split_by_lengths(
            &mut targets.targets,
            &slot_lengths,
        ))
        .zip(parallel::split_by_lengths(&mut targets.counts, &lengths))
        .zip(scratch.iter_mut())
        .collect();
    let inputs = KernelInputs {
        snapshot: &snapshot,
        params: &params,
        topology: &topology,
        tables: &tables.0,
        dim,
        k,
    };
    parallel::run_parts(parts, |(((range, slots), counts), scratch)| {
        radiate_run(&inputs, range, slots, counts, scratch)
    });
}

/// What the radiation kernel reads for a run of sources.
struct KernelInputs<'a> {
    snapshot: &'a ActiveSnapshot,
    params: &'a NodeParams,
    topology: &'a Topology,
    tables: &'a crate::model::tables::Tables,
    dim: usize,
    k: usize,
}

/// Exact top-K targets for the snapshot sources in `range`, into `slots` (`k` per source) and
/// `counts`; shared by the one-system and the split granularity.
fn radiate_run(
    inputs: &KernelInputs<'_>,
    range: std::ops::Range<usize>,
    slots: &mut [u32],
    counts: &mut [u32],
    scratch: &mut Scratch,
) {
    let KernelInputs {
        snapshot,
        params,
        topology,
        tables,
        dim,
        k,
    } = *inputs;
    let mut out = Vec::with_capacity(k);
    for (j, i) in range.enumerate() {
        let u = snapshot.nodes[i];
        let source = Source {
            index: u,
            phase: &snapshot.phase[i * dim..(i + 1) * dim],
            successors: topology.graph.successors.row(u as usize),
        };
        kernel::top_k(
            tables,
            &params.phasors,
            &params.phase,
            &source,
            k,
            scratch,
            &mut out,
        );
        slots[j * k..j * k + out.len()].copy_from_slice(&out);
        counts[j] = out.len() as u32;
    }
}

/// Buffers of the radiation parts under `Granularity::Split`: part i writes only buffer i,
/// behind a mutex only it locks, so the part systems take the resource read-only and the
/// multi-threaded executor may run them at once.
#[derive(Resource, Default)]
pub struct RadiationParts {
    /// One buffer per part.
    pub parts: Vec<std::sync::Mutex<PartBuffer>>,
}

/// One radiation part's output: the targets of its run of sources.
#[derive(Default)]
pub struct PartBuffer {
    /// Targets, `k` slots per source.
    pub targets: Vec<u32>,
    /// Targets per source.
    pub counts: Vec<u32>,
    scratch: Scratch,
}

/// The run of snapshot sources that part `part` of `parts` handles.
fn part_range(sources: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    let per = sources.div_ceil(parts.max(1));
    (part * per).min(sources)..((part + 1) * per).min(sources)
}

/// The system for radiation part `part` of `parts`: exact top-K for its run of sources, on one
/// thread (bevy decides what runs beside it).
#[expect(
    clippy::type_complexity,
    reason = "the parameter list of a bevy system closure"
)]
pub fn radiate_part(
    part: usize,
    parts: usize,
) -> impl FnMut(
    Res<ActiveSnapshot>,
    Res<NodeParams>,
    Res<Topology>,
    Res<LookupTables>,
    Res<ForwardSettings>,
    Res<RadiationParts>,
    Res<StageClock>,
) + Send
+ Sync
+ 'static {
    move |snapshot: Res<ActiveSnapshot>,
          params: Res<NodeParams>,
          topology: Res<Topology>,
          tables: Res<LookupTables>,
          settings: Res<ForwardSettings>,
          buffers: Res<RadiationParts>,
          clock: Res<StageClock>| {
        let _t = clock.time_system(Stage::Radiation, "radiation::radiate_part");
        let k = if settings.radiation {
            settings.top_k
        } else {
            0
        };
        let range = part_range(snapshot.nodes.len(), part, parts);
        let mut guard = buffers.parts[part]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let buffer = &mut *guard;
        buffer.targets.clear();
        buffer.targets.resize(range.len() * k, u32::MAX);
        buffer.counts.clear();
        buffer.counts.resize(range.len(), 0);
        if k == 0 {
            return;
        }
        let inputs = KernelInputs {
            snapshot: &snapshot,
            params: &params,
            topology: &topology,
            tables: &tables.0,
            dim: settings.dim,
            k,
        };
        let PartBuffer {
            targets,
            counts,
            scratch,
        } = buffer;
        radiate_run(&inputs, range, targets, counts, scratch);
    }
}

/// Concatenates the parts' targets, in part (= source) order, into [`RadiationTargets`].
pub fn merge_radiation(
    snapshot: Res<ActiveSnapshot>,
    settings: Res<ForwardSettings>,
    buffers: Res<RadiationParts>,
    mut targets: ResMut<RadiationTargets>,
    clock: Res<StageClock>,
) {
    let _t = clock.time_system(Stage::Radiation, "radiation::merge_radiation");
    let k = if settings.radiation {
        settings.top_k
    } else {
        0
    };
    let targets = &mut *targets;
    targets.k = k;
    targets.targets.clear();
    targets.counts.clear();
    for part in &buffers.parts {
        let buffer = part.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        targets.targets.extend_from_slice(&buffer.targets);
        targets.counts.extend_from_slice(&buffer.counts);
    }
    debug_assert_eq!(targets.counts.len(), snapshot.nodes.len());
}
