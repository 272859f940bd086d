//! Forward stage: phase cells for every (source, target) pair, the excitatory filter, and
//! additive arrivals applied in a fixed order (SPEC 4 steps 2-4).

use bevy_ecs::prelude::*;

use crate::model::MAX_DIM;
use crate::model::phase::{add_mod, phase_cell};
use crate::scene::Inhibition;
use crate::sim::components::{Activation, IndexVec};
use crate::sim::resources::{
    ActiveSnapshot, Arrivals, ForwardSettings, LookupTables, LoopState, NodeParams,
    RadiationTargets, StageClock, StageName, Topology,
};

/// Accumulates all kept arrivals of this timestep into [`Arrivals`].
///
/// Sources are visited in ascending index order and, per source, static successors before
/// radiation targets, so every target receives its arrivals in the order SPEC 4 fixes and the
/// float sums never depend on threads. A target that was active starts from its snapshot state,
/// an inactive one from zeros.
#[expect(
    clippy::too_many_arguments,
    reason = "a bevy system names each resource it reads"
)]
pub fn accumulate_arrivals(
    snapshot: Res<ActiveSnapshot>,
    radiation: Res<RadiationTargets>,
    topology: Res<Topology>,
    params: Res<NodeParams>,
    tables: Res<LookupTables>,
    settings: Res<ForwardSettings>,
    mut arrivals: ResMut<Arrivals>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Forward);
    let dim = settings.dim;
    let n = settings.total_nodes as usize;
    let (pn, mn) = (settings.phase_bins, settings.magnitude_bins);
    let excitatory_only = settings.inhibition == Inhibition::Excitatory;
    let arr = &mut *arrivals;
    arr.touched.clear();
    arr.touched.resize(n, false);
    arr.list.clear();
    arr.phase.resize(n * dim, 0);
    arr.magnitude.resize(n * dim, 0);
    arr.strength.resize(n, 0.0);
    let mut cell_phase = [0u16; MAX_DIM];
    let mut cell_mag = [0u16; MAX_DIM];
    for (i, &u) in snapshot.nodes.iter().enumerate() {
        let act_phase = &snapshot.phase[i * dim..(i + 1) * dim];
        let act_mag = &snapshot.magnitude[i * dim..(i + 1) * dim];
        let statics = topology.graph.successors.row(u as usize);
        let dynamic = if radiation.k > 0 {
            radiation.of(i)
        } else {
            &[]
        };
        for &v in statics.iter().chain(dynamic) {
            let vk = v as usize;
            let s = phase_cell(
                &tables.0,
                act_phase,
                act_mag,
                &params.phase[vk * dim..(vk + 1) * dim],
                &params.magnitude[vk * dim..(vk + 1) * dim],
                &mut cell_phase[..dim],
                &mut cell_mag[..dim],
            );
            if excitatory_only && s <= 0.0 {
                continue;
            }
            let (vp, vm) = (
                &mut arr.phase[vk * dim..(vk + 1) * dim],
                &mut arr.magnitude[vk * dim..(vk + 1) * dim],
            );
            if !arr.touched[vk] {
                arr.touched[vk] = true;
                arr.list.push(v);
                let slot = snapshot.slot_of[vk];
                if slot == u32::MAX {
                    vp.fill(0);
                    vm.fill(0);
                    arr.strength[vk] = 0.0;
                } else {
                    let j = slot as usize;
                    vp.copy_from_slice(&snapshot.phase[j * dim..(j + 1) * dim]);
                    vm.copy_from_slice(&snapshot.magnitude[j * dim..(j + 1) * dim]);
                    arr.strength[vk] = snapshot.strength[j];
                }
            }
            for d in 0..dim {
                vp[d] = add_mod(vp[d], cell_phase[d], pn);
                vm[d] = add_mod(vm[d], cell_mag[d], mn);
            }
            arr.strength[vk] += s;
        }
    }
}

/// Writes the accumulated arrivals into `Activation` components (inserting them on newly
/// active nodes) and records n, the active count after arrivals. With
/// `inhibition: AfterAccumulation`, a node whose net strength is <= 0 is deactivated.
#[expect(
    clippy::too_many_arguments,
    reason = "a bevy system names each resource it reads"
)]
pub fn apply_arrivals(
    arrivals: Res<Arrivals>,
    snapshot: Res<ActiveSnapshot>,
    topology: Res<Topology>,
    settings: Res<ForwardSettings>,
    mut activations: Query<&mut Activation>,
    mut commands: Commands,
    mut state: ResMut<LoopState>,
    clock: Res<StageClock>,
) {
    let _t = clock.time(StageName::Forward);
    let dim = settings.dim;
    let mut active = snapshot.nodes.len() as i64;
    for &v in &arrivals.list {
        let vk = v as usize;
        let entity = topology.entities[vk];
        let strength = arrivals.strength[vk];
        let was_active = snapshot.slot_of[vk] != u32::MAX;
        if settings.inhibition == Inhibition::AfterAccumulation && strength <= 0.0 {
            if was_active {
                commands.entity(entity).remove::<Activation>();
                active -= 1;
            }
            continue;
        }
        let mut phase: IndexVec = Default::default();
        let mut magnitude: IndexVec = Default::default();
        phase[..dim].copy_from_slice(&arrivals.phase[vk * dim..(vk + 1) * dim]);
        magnitude[..dim].copy_from_slice(&arrivals.magnitude[vk * dim..(vk + 1) * dim]);
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
    state.active_after_arrivals = active as u32;
    state.active_sum += active as u64;
}
