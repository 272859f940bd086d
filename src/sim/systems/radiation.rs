//! Radiation stage: snapshot the active set, then exact top-K targets for every active source,
//! through the multi-level cache (SPEC 5).

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;

use super::Ctx;
use crate::radiation::cache::Lookup;
use crate::radiation::{self as kernel, Scratch, Source};
use crate::sim::components::{Activation, Node};
use crate::sim::parallel;
use crate::sim::resources::{
    ActiveSnapshot, ForwardSettings, NodeParams, RadiationCache, RadiationTargets, Topology,
    Workers,
};

/// What the radiation kernel reads besides the tables: the active sources, the parameters of
/// every candidate, and the static successors each source excludes.
#[derive(SystemParam)]
pub struct RadiationInputs<'w> {
    /// The active sources of this timestep.
    pub snapshot: Res<'w, ActiveSnapshot>,
    /// Every node's parameters and phasors.
    pub params: Res<'w, NodeParams>,
    /// The static graph.
    pub topology: Res<'w, Topology>,
}

impl RadiationInputs<'_> {
    /// The kernel's view of these inputs for `k` targets per source.
    fn kernel<'a>(&'a self, ctx: &'a Ctx, k: usize) -> KernelInputs<'a> {
        KernelInputs {
            snapshot: &self.snapshot,
            params: &self.params,
            topology: &self.topology,
            tables: &ctx.tables.0,
            dim: ctx.settings.dim,
            k,
            backend: ctx.settings.backend,
        }
    }
}

/// Gathers the active nodes, ascending by index, into the [`ActiveSnapshot`].
pub fn gather_active(
    active: Query<(&Node, &Activation)>,
    mut snapshot: ResMut<ActiveSnapshot>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let settings = &ctx.settings;
    let dim = settings.dim;
    let snap = &mut *snapshot;
    // Two passes over the active set and one over the slot map, so the snapshot is listed in
    // ascending node order without a per-timestep allocation: mark, number in index order,
    // then copy each activation into its slot.
    snap.slot_of.clear();
    snap.slot_of.resize(settings.total_nodes as usize, u32::MAX);
    for (n, _) in &active {
        snap.slot_of[n.index as usize] = 0;
    }
    snap.nodes.clear();
    for (k, slot) in snap.slot_of.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = snap.nodes.len() as u32;
            snap.nodes.push(k as u32);
        }
    }
    let count = snap.nodes.len();
    snap.phase.clear();
    snap.phase.resize(count * dim, 0);
    snap.magnitude.clear();
    snap.magnitude.resize(count * dim, 0);
    snap.strength.clear();
    snap.strength.resize(count, 0.0);
    for (n, a) in &active {
        let i = snap.slot_of[n.index as usize] as usize;
        snap.phase[i * dim..(i + 1) * dim].copy_from_slice(&a.phase[..dim]);
        snap.magnitude[i * dim..(i + 1) * dim].copy_from_slice(&a.magnitude[..dim]);
        snap.strength[i] = a.strength;
    }
}

/// The radiation systems' shared view of the kernel's inputs.
fn top_k_of(settings: &ForwardSettings) -> usize {
    if settings.radiation {
        settings.top_k
    } else {
        0
    }
}

/// Level 1 lookups for every source of the snapshot, in source order: hits go straight into
/// `targets`, misses (and their keys) into the cache's work list for the kernel. Levels 2 and
/// 3 count their lookups. Sizes `targets` for this timestep.
fn lookup(
    cache: &mut RadiationCache,
    snapshot: &ActiveSnapshot,
    version: u64,
    dim: usize,
    k: usize,
    targets: &mut RadiationTargets,
) {
    let sources = snapshot.nodes.len();
    targets.k = k;
    targets.targets.clear();
    targets.targets.resize(sources * k, u32::MAX);
    targets.counts.clear();
    targets.counts.resize(sources, 0);
    cache.misses.clear();
    cache.keys.clear();
    if k == 0 {
        return;
    }
    cache.static_counters.hits += sources as u64;
    let RadiationCache {
        pattern,
        misses,
        keys,
        ..
    } = cache;
    match pattern {
        None => misses.extend(0..sources as u32),
        Some(pattern) => {
            for (i, &u) in snapshot.nodes.iter().enumerate() {
                let key = pattern.key(u, &snapshot.phase[i * dim..(i + 1) * dim], k);
                match pattern.lookup(&key, version) {
                    Lookup::Hit(hit) => {
                        targets.targets[i * k..i * k + hit.len()].copy_from_slice(hit);
                        targets.counts[i] = hit.len() as u32;
                    }
                    Lookup::Miss | Lookup::Stale => {
                        misses.push(i as u32);
                        keys.push(key);
                    }
                }
            }
        }
    }
    cache.candidate_counters.hits += cache.misses.len() as u64;
    cache.miss_targets.clear();
    cache.miss_targets.resize(cache.misses.len() * k, u32::MAX);
    cache.miss_counts.clear();
    cache.miss_counts.resize(cache.misses.len(), 0);
}

/// Copies the kernel's answers for the misses into `targets` and stores them in level 1, in
/// source order.
fn store(cache: &mut RadiationCache, version: u64, k: usize, targets: &mut RadiationTargets) {
    let RadiationCache {
        pattern,
        misses,
        keys,
        miss_targets,
        miss_counts,
        ..
    } = cache;
    for (j, &i) in misses.iter().enumerate() {
        let (i, n) = (i as usize, miss_counts[j] as usize);
        let found = &miss_targets[j * k..j * k + n];
        targets.targets[i * k..i * k + n].copy_from_slice(found);
        targets.counts[i] = n as u32;
        if let Some(pattern) = pattern.as_mut() {
            pattern.insert(keys[j], version, found);
        }
    }
}

/// Computes the radiation targets of every active source (exact top-K, SPEC 5): level-1
/// cache lookups in source order, the kernel for the misses in parallel over contiguous runs
/// (each miss's targets land in its own slots), then the new answers stored in source order.
/// Nothing depends on the thread count.
pub fn radiate(
    inputs: RadiationInputs,
    mut targets: ResMut<RadiationTargets>,
    mut cache: ResMut<RadiationCache>,
    mut workers: ResMut<Workers>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let k = top_k_of(&ctx.settings);
    let cache = &mut *cache;
    let version = cache.version;
    let dim = ctx.settings.dim;
    lookup(cache, &inputs.snapshot, version, dim, k, &mut targets);
    let jobs = cache.misses.len();
    if k == 0 || jobs == 0 {
        return;
    }
    let Workers {
        threads,
        batch_size,
        scratch,
    } = &mut *workers;
    let ranges = parallel::split_ranges(jobs, *threads, *batch_size);
    if scratch.len() < ranges.len() {
        scratch.resize_with(ranges.len(), Scratch::default);
    }
    let lengths: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let slot_lengths: Vec<usize> = lengths.iter().map(|n| n * k).collect();
    let RadiationCache {
        misses,
        miss_targets,
        miss_counts,
        ..
    } = &mut *cache;
    let parts: Vec<_> = ranges
        .into_iter()
        .zip(parallel::split_by_lengths(miss_targets, &slot_lengths))
        .zip(parallel::split_by_lengths(miss_counts, &lengths))
        .zip(scratch.iter_mut())
        .collect();
    let kernel = inputs.kernel(&ctx, k);
    let misses = &*misses;
    parallel::run_parts(parts, |(((range, slots), counts), scratch)| {
        radiate_run(&kernel, &misses[range], slots, counts, scratch)
    });
    store(cache, version, k, &mut targets);
}

/// What the radiation kernel reads for a run of sources.
struct KernelInputs<'a> {
    snapshot: &'a ActiveSnapshot,
    params: &'a NodeParams,
    topology: &'a Topology,
    tables: &'a crate::model::tables::Tables,
    dim: usize,
    k: usize,
    backend: kernel::Backend,
}

/// Exact top-K targets for the snapshot sources listed in `sources`, into `slots` (`k` per
/// source) and `counts`; shared by the one-system and the split granularity.
fn radiate_run(
    inputs: &KernelInputs<'_>,
    sources: &[u32],
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
        backend,
    } = *inputs;
    kernel::top_k_batch(
        backend,
        tables,
        &params.phasors,
        &params.phase,
        sources.len(),
        // Inlined: returned through memory, the source's fields were read back before the
        // stores had landed (a failed store forward per source).
        #[inline(always)]
        |j| {
            let i = sources[j] as usize;
            let u = snapshot.nodes[i];
            Source {
                index: u,
                phase: &snapshot.phase[i * dim..(i + 1) * dim],
                successors: topology.graph.successors.row(u as usize),
            }
        },
        k,
        scratch,
        slots,
        counts,
    );
}

/// Under `Granularity::Split`: the level-1 lookups that precede the radiation parts (the
/// parts then compute only the misses).
pub fn lookup_radiation(
    snapshot: Res<ActiveSnapshot>,
    mut targets: ResMut<RadiationTargets>,
    mut cache: ResMut<RadiationCache>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let k = top_k_of(&ctx.settings);
    let version = cache.version;
    let dim = ctx.settings.dim;
    lookup(&mut cache, &snapshot, version, dim, k, &mut targets);
}

/// Buffers of the radiation parts under `Granularity::Split`: part i writes only buffer i,
/// behind a mutex only it locks, so the part systems take the resource read-only and the
/// multi-threaded executor may run them at once.
#[derive(Resource, Default)]
pub struct RadiationParts {
    /// One buffer per part.
    pub parts: Vec<std::sync::Mutex<PartBuffer>>,
}

/// One radiation part's output: the targets of its run of misses.
#[derive(Default)]
pub struct PartBuffer {
    /// Targets, `k` slots per source.
    pub targets: Vec<u32>,
    /// Targets per source.
    pub counts: Vec<u32>,
    scratch: Scratch,
}

impl PartBuffer {
    /// The index backend's counts of this part's kernel buffers.
    pub fn index_counts(&self) -> (u64, u64, u64) {
        self.scratch.index_counts()
    }

    /// Zeroes them.
    pub fn reset_counts(&mut self) {
        self.scratch.reset_counts();
    }
}

/// The run of misses that part `part` of `parts` handles.
fn part_range(sources: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    let per = sources.div_ceil(parts.max(1));
    (part * per).min(sources)..((part + 1) * per).min(sources)
}

/// The system for radiation part `part` of `parts`: exact top-K for its run of the
/// timestep's misses, on one thread (bevy decides what runs beside it).
pub fn radiate_part(
    part: usize,
    parts: usize,
) -> impl FnMut(RadiationInputs, Res<RadiationCache>, Res<RadiationParts>, Ctx) + Send + Sync + 'static
{
    move |inputs: RadiationInputs,
          cache: Res<RadiationCache>,
          buffers: Res<RadiationParts>,
          ctx: Ctx| {
        let _t = ctx.time();
        let k = top_k_of(&ctx.settings);
        let range = part_range(cache.misses.len(), part, parts);
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
        let PartBuffer {
            targets,
            counts,
            scratch,
        } = buffer;
        let kernel = inputs.kernel(&ctx, k);
        radiate_run(&kernel, &cache.misses[range], targets, counts, scratch);
    }
}

/// Concatenates the parts' answers, in part (= source) order, and stores them like
/// [`radiate`] does.
pub fn merge_radiation(
    buffers: Res<RadiationParts>,
    mut targets: ResMut<RadiationTargets>,
    mut cache: ResMut<RadiationCache>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let k = top_k_of(&ctx.settings);
    if k == 0 {
        return;
    }
    let cache = &mut *cache;
    cache.miss_targets.clear();
    cache.miss_counts.clear();
    for part in &buffers.parts {
        let buffer = part.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.miss_targets.extend_from_slice(&buffer.targets);
        cache.miss_counts.extend_from_slice(&buffer.counts);
    }
    debug_assert_eq!(cache.miss_counts.len(), cache.misses.len());
    let version = cache.version;
    store(cache, version, k, &mut targets);
}
