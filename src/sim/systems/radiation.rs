//! Radiation stage: snapshot the active set, then exact top-K targets for every active source.

use bevy_ecs::prelude::*;
use rayon::prelude::*;

use crate::radiation::{self as kernel, Scratch, Source};
use crate::sim::components::{Activation, Node};
use crate::sim::resources::{
    ActiveSnapshot, ForwardSettings, KernelPool, LookupTables, NodeParams, RadiationTargets,
    StageClock, StageName, Topology,
};

/// Sources per parallel task: small enough to balance two cores, large enough to amortise.
const SOURCES_PER_TASK: usize = 32;

/// Gathers the active nodes, ascending by index, into the [`ActiveSnapshot`].
pub fn gather_active(
    active: Query<(&Node, &Activation)>,
    mut snapshot: ResMut<ActiveSnapshot>,
    settings: Res<ForwardSettings>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Radiation);
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
/// over fixed chunks of sources; each source's targets land in its own slots, so the result
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
    mut pool: ResMut<KernelPool>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Radiation);
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
    let tasks = sources.div_ceil(SOURCES_PER_TASK);
    let KernelPool { pool, scratch } = &mut *pool;
    if scratch.len() < tasks {
        scratch.resize_with(tasks, Scratch::default);
    }
    let run_task = |task: usize, slots: &mut [u32], counts: &mut [u32], scratch: &mut Scratch| {
        let mut out = Vec::with_capacity(k);
        for (j, count) in counts.iter_mut().enumerate() {
            let i = task * SOURCES_PER_TASK + j;
            let u = snapshot.nodes[i];
            let source = Source {
                index: u,
                phase: &snapshot.phase[i * dim..(i + 1) * dim],
                successors: topology.graph.successors.row(u as usize),
            };
            kernel::top_k(
                &tables.0,
                &params.phasors,
                &params.phase,
                &source,
                k,
                scratch,
                &mut out,
            );
            slots[j * k..j * k + out.len()].copy_from_slice(&out);
            *count = out.len() as u32;
        }
    };
    let slot_chunks = targets.targets.chunks_mut(SOURCES_PER_TASK * k);
    let count_chunks = targets.counts.chunks_mut(SOURCES_PER_TASK);
    if pool.current_num_threads() <= 1 || tasks == 1 {
        for (task, ((slots, counts), scratch)) in slot_chunks
            .zip(count_chunks)
            .zip(scratch.iter_mut())
            .enumerate()
        {
            run_task(task, slots, counts, scratch);
        }
    } else {
        let slot_chunks = targets.targets.par_chunks_mut(SOURCES_PER_TASK * k);
        let count_chunks = targets.counts.par_chunks_mut(SOURCES_PER_TASK);
        pool.install(|| {
            slot_chunks
                .zip(count_chunks)
                .zip(scratch[..tasks].par_iter_mut())
                .enumerate()
                .for_each(|(task, ((slots, counts), scratch))| {
                    run_task(task, slots, counts, scratch)
                });
        });
    }
}
