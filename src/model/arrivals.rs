//! Arrivals (SPEC 4 steps 3-4): the excitatory gate, the additive accumulation of a timestep's
//! phase cells into per-node sums, and the inhibition rule applied after accumulation.
//!
//! The treatment of negative arrivals is the scene's own [`Inhibition`] (plain data, no ECS).

use super::phase::add_mod;
use crate::scene::Inhibition;

/// The excitatory gate of SPEC 4 step 3: under [`Inhibition::Excitatory`] an arrival of strength
/// `s <= 0` is dropped before accumulation; under [`Inhibition::AfterAccumulation`] every
/// arrival is accumulated.
#[inline]
pub fn gate_drops(inhibition: Inhibition, s: f32) -> bool {
    inhibition == Inhibition::Excitatory && s <= 0.0
}

/// The inhibition rule of SPEC 4 step 3: under [`Inhibition::AfterAccumulation`] a node whose
/// net strength after accumulation is `<= 0` is deactivated; under
/// [`Inhibition::Excitatory`] no node is.
#[inline]
pub fn inhibition_deactivates(inhibition: Inhibition, net: f32) -> bool {
    inhibition == Inhibition::AfterAccumulation && net <= 0.0
}

/// One timestep's phase cells, in emission order: ascending source index and, per source,
/// static successors before radiation targets. Cell c targets `target[c]` with φo
/// `phase[c·D..(c+1)·D]`, μo `magnitude[..]` and strength `strength[c]`.
#[derive(Clone, Copy, Debug)]
pub struct Cells<'a> {
    /// Target node of each cell.
    pub target: &'a [u32],
    /// φo of each cell, `[cell][dim]`.
    pub phase: &'a [u16],
    /// μo of each cell, `[cell][dim]`.
    pub magnitude: &'a [u16],
    /// Strength s of each cell.
    pub strength: &'a [f32],
}

/// The synchronous state arrivals start from: the active nodes before this timestep's
/// arrivals. Node k is active when `slot_of[k] != u32::MAX`; its activation is then entry
/// `slot_of[k]` of `phase`, `magnitude` (D values each) and `strength`. `slot_of` has one entry
/// per node.
#[derive(Clone, Copy, Debug)]
pub struct Prior<'a> {
    /// Position of each node in the active lists, or `u32::MAX` if inactive.
    pub slot_of: &'a [u32],
    /// φa per active node, `[slot][dim]`.
    pub phase: &'a [u16],
    /// μa per active node, `[slot][dim]`.
    pub magnitude: &'a [u16],
    /// σ per active node.
    pub strength: &'a [f32],
}

/// Per-node sums of one timestep's kept arrivals (buffers reused across timesteps).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArrivalSums {
    /// Whether node k received a kept arrival.
    pub touched: Vec<bool>,
    /// Touched nodes in first-touch order.
    pub list: Vec<u32>,
    /// Accumulated phase, `[node][dim]` (meaningful for touched nodes only).
    pub phase: Vec<u16>,
    /// Accumulated magnitude, `[node][dim]` (meaningful for touched nodes only).
    pub magnitude: Vec<u16>,
    /// Accumulated strength (meaningful for touched nodes only).
    pub strength: Vec<f32>,
}

/// Accumulates the kept cells into `sums` (SPEC 4 step 4), resized for `prior.slot_of.len()`
/// nodes of dimension `dim` with `phase_bins` N and `magnitude_bins` M.
///
/// Cells are visited in the order given (emission order), so every target receives its
/// arrivals in the order SPEC 4 fixes and the float sums never depend on threads. A target that
/// was active starts from its prior activation, an inactive one from zeros; then, per kept
/// arrival, φ += φo (mod N), μ += μo (mod M), σ += s. Dropped cells ([`gate_drops`]) are skipped,
/// and so are cells into the first `clamped` nodes (the inputs under `carry: Replace`).
pub fn accumulate_arrivals(
    cells: Cells<'_>,
    prior: Prior<'_>,
    dim: usize,
    bins: (u32, u32),
    inhibition: Inhibition,
    clamped: u32,
    sums: &mut ArrivalSums,
) {
    sums.begin(prior.slot_of.len(), dim);
    let far = crate::prefetch::scattered(prior.slot_of.len());
    for (c, &v) in cells.target.iter().enumerate() {
        // On a large graph the targets are scattered: ask for the lines of a later cell's
        // target now, so its misses overlap this cell's work (a hint; the sums are the same).
        if let Some(&ahead) = cells.target.get(c + PREFETCH_AHEAD).filter(|_| far) {
            sums.prefetch(ahead, &prior);
        }
        sums.add(
            v,
            cells.strength[c],
            &cells.phase[c * dim..(c + 1) * dim],
            &cells.magnitude[c * dim..(c + 1) * dim],
            &prior,
            bins,
            inhibition,
            clamped,
        );
    }
}

/// How many cells ahead [`accumulate_arrivals`] prefetches a target's lines.
const PREFETCH_AHEAD: usize = 12;

impl ArrivalSums {
    /// Prefetches the lines [`ArrivalSums::add`] touches for target `v`.
    #[inline(always)]
    pub fn prefetch(&self, v: u32, prior: &Prior<'_>) {
        let vk = v as usize;
        let dim = self.phase.len() / self.strength.len().max(1);
        if let (Some(p), Some(m), Some(s), Some(t), Some(o)) = (
            self.phase.get(vk * dim),
            self.magnitude.get(vk * dim),
            self.strength.get(vk),
            self.touched.get(vk),
            prior.slot_of.get(vk),
        ) {
            crate::prefetch::prefetch(p);
            crate::prefetch::prefetch(m);
            crate::prefetch::prefetch(s);
            crate::prefetch::prefetch(t);
            crate::prefetch::prefetch(o);
        }
    }

    /// Marks target `v` as touched on its first kept arrival of the timestep, starting its sums
    /// from its prior activation (or zeros if it was inactive).
    #[inline(always)]
    pub fn touch(&mut self, v: u32, dim: usize, prior: &Prior<'_>) {
        let vk = v as usize;
        if self.touched[vk] {
            return;
        }
        self.touched[vk] = true;
        self.list.push(v);
        let (vp, vm) = (
            &mut self.phase[vk * dim..(vk + 1) * dim],
            &mut self.magnitude[vk * dim..(vk + 1) * dim],
        );
        let slot = prior.slot_of[vk];
        if slot == u32::MAX {
            vp.fill(0);
            vm.fill(0);
            self.strength[vk] = 0.0;
        } else {
            let j = slot as usize;
            vp.copy_from_slice(&prior.phase[j * dim..(j + 1) * dim]);
            vm.copy_from_slice(&prior.magnitude[j * dim..(j + 1) * dim]);
            self.strength[vk] = prior.strength[j];
        }
    }

    /// Empties the sums for a timestep over `n` nodes of dimension `dim`.
    pub fn begin(&mut self, n: usize, dim: usize) {
        self.touched.clear();
        self.touched.resize(n, false);
        self.list.clear();
        self.phase.resize(n * dim, 0);
        self.magnitude.resize(n * dim, 0);
        self.strength.resize(n, 0.0);
    }

    /// Adds one cell (target `v`, strength `s`, φo `cp`, μo `cm`) as [`accumulate_arrivals`]
    /// does; cells must come in emission order. The forward stage calls this directly when it
    /// accumulates each cell as it computes it (no emission buffer), with the same order and
    /// so the same sums.
    #[expect(
        clippy::too_many_arguments,
        reason = "one cell and the fixed rules it is added under"
    )]
    #[inline(always)]
    pub fn add(
        &mut self,
        v: u32,
        s: f32,
        cp: &[u16],
        cm: &[u16],
        prior: &Prior<'_>,
        (phase_bins, magnitude_bins): (u32, u32),
        inhibition: Inhibition,
        clamped: u32,
    ) {
        if v < clamped || gate_drops(inhibition, s) {
            return;
        }
        let dim = cp.len();
        let vk = v as usize;
        self.touch(v, dim, prior);
        let (vp, vm) = (
            &mut self.phase[vk * dim..(vk + 1) * dim],
            &mut self.magnitude[vk * dim..(vk + 1) * dim],
        );
        for d in 0..dim {
            vp[d] = add_mod(vp[d], cp[d], phase_bins);
            vm[d] = add_mod(vm[d], cm[d], magnitude_bins);
        }
        self.strength[vk] += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_drops_non_positive_only_when_excitatory() {
        for s in [0.0, -0.0, -1.5] {
            assert!(gate_drops(Inhibition::Excitatory, s), "{s}");
            assert!(!gate_drops(Inhibition::AfterAccumulation, s), "{s}");
        }
        assert!(!gate_drops(Inhibition::Excitatory, 1e-30));
    }

    #[test]
    fn inhibition_deactivates_non_positive_nets_only_after_accumulation() {
        for net in [0.0, -0.0, -2.0] {
            assert!(inhibition_deactivates(Inhibition::AfterAccumulation, net));
            assert!(!inhibition_deactivates(Inhibition::Excitatory, net));
        }
        assert!(!inhibition_deactivates(
            Inhibition::AfterAccumulation,
            1e-30
        ));
    }

    /// 4 nodes, D = 2, N = 8, M = 5. Node 1 was active (φ [7, 1], μ [4, 0], σ 0.5); the others
    /// were not. Cells, in emission order:
    ///   c0 -> 2: φo [3, 3], μo [1, 2], s  1.0
    ///   c1 -> 1: φo [2, 7], μo [3, 4], s -0.25
    ///   c2 -> 2: φo [6, 6], μo [4, 4], s  0.5
    ///   c3 -> 1: φo [1, 0], μo [2, 1], s  0.75
    fn example(inhibition: Inhibition) -> ArrivalSums {
        let cells = Cells {
            target: &[2, 1, 2, 1],
            phase: &[3, 3, 2, 7, 6, 6, 1, 0],
            magnitude: &[1, 2, 3, 4, 4, 4, 2, 1],
            strength: &[1.0, -0.25, 0.5, 0.75],
        };
        let prior = Prior {
            slot_of: &[u32::MAX, 0, u32::MAX, u32::MAX],
            phase: &[7, 1],
            magnitude: &[4, 0],
            strength: &[0.5],
        };
        // Stale values from an earlier timestep must not leak in.
        let mut sums = ArrivalSums {
            touched: vec![true; 4],
            list: vec![3],
            phase: vec![9; 8],
            magnitude: vec![9; 8],
            strength: vec![9.0; 4],
        };
        accumulate_arrivals(cells, prior, 2, (8, 5), inhibition, 0, &mut sums);
        sums
    }

    #[test]
    fn excitatory_accumulation_by_hand() {
        let sums = example(Inhibition::Excitatory);
        // c1 is dropped. Node 2 from zeros: φ [3+6, 3+6] mod 8 = [1, 1], μ [1+4, 2+4] mod 5
        // = [0, 1], σ 1 + 0.5. Node 1 from its prior: φ [7+1, 1+0] mod 8 = [0, 1],
        // μ [4+2, 0+1] mod 5 = [1, 1], σ 0.5 + 0.75.
        assert_eq!(sums.list, [2, 1]);
        assert_eq!(sums.touched, [false, true, true, false]);
        assert_eq!(&sums.phase[2..6], &[0, 1, 1, 1]);
        assert_eq!(&sums.magnitude[2..6], &[1, 1, 0, 1]);
        assert_eq!(sums.strength[1], 0.5 + 0.75);
        assert_eq!(sums.strength[2], 0.0 + 1.0 + 0.5);
    }

    #[test]
    fn after_accumulation_keeps_negative_cells() {
        let sums = example(Inhibition::AfterAccumulation);
        // Node 1 now takes c1, then c3: φ [7+2+1, 1+7+0] mod 8
        // = [2, 0], μ [4+3+2, 0+4+1] mod 5 = [4, 0], σ 0.5 − 0.25 + 0.75 in that order.
        assert_eq!(sums.list, [2, 1]);
        assert_eq!(&sums.phase[2..4], &[2, 0]);
        assert_eq!(&sums.magnitude[2..4], &[4, 0]);
        assert_eq!(sums.strength[1], (0.5f32 + -0.25) + 0.75);
        assert_eq!(&sums.phase[4..6], &[1, 1]);
        assert_eq!(sums.strength[2], 1.5);
    }

    #[test]
    fn strengths_are_summed_in_cell_order() {
        // 1e8 + 1 − 1e8 is 0 in f32 left to right, 1 in any order that adds 1 last.
        let cells = Cells {
            target: &[0, 0, 0],
            phase: &[0, 0, 0],
            magnitude: &[0, 0, 0],
            strength: &[1e8, 1.0, -1e8],
        };
        let prior = Prior {
            slot_of: &[u32::MAX],
            phase: &[],
            magnitude: &[],
            strength: &[],
        };
        let mut sums = ArrivalSums::default();
        accumulate_arrivals(
            cells,
            prior,
            1,
            (4, 4),
            Inhibition::AfterAccumulation,
            0,
            &mut sums,
        );
        assert_eq!(sums.strength[0], 0.0);
    }
}
