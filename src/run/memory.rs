//! What a run holds in memory, owner by owner, beside the scene's estimate (issue 12, item 13).
//!
//! Each owner reports its own size: the datasets and the encoding caches count their buffers
//! exactly; a world (primary, evaluation replica, batch world) is measured as the heap it
//! allocated while it was built ([`crate::alloc::heap_delta`], when the counting allocator is
//! installed, as it is in the `neurograph` binary). The process's heap peak and resident set
//! are read beside them, so the estimate the 16 GiB guard uses can be checked against reality.

use serde::{Deserialize, Serialize};

use super::Runner;

/// Memory of a run: the estimate, each owner's bytes, and the process's totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// [`crate::scene::Scene::memory_estimate_for`] with the data's real shape, in bytes.
    pub estimate_bytes: u64,
    /// `(owner, bytes)`; `None` where it could not be measured (no counting allocator).
    pub owners: Vec<(String, Option<u64>)>,
    /// Heap bytes allocated now, and at most so far (with the counting allocator).
    pub heap_bytes: Option<u64>,
    /// The heap's peak so far.
    pub heap_peak_bytes: Option<u64>,
    /// The process's resident set now (`VmRSS`), where the platform reports it.
    pub resident_bytes: Option<u64>,
    /// The resident set's peak so far (`VmHWM`).
    pub resident_peak_bytes: Option<u64>,
}

impl std::fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = |v: Option<u64>| v.map_or("not measured".to_string(), crate::scene::format_bytes);
        for (owner, bytes) in &self.owners {
            writeln!(f, "  {owner:<30} {:>12}", b(*bytes))?;
        }
        writeln!(
            f,
            "  {:<30} {:>12}   (peak {})",
            "heap now",
            b(self.heap_bytes),
            b(self.heap_peak_bytes)
        )?;
        writeln!(
            f,
            "  {:<30} {:>12}   (peak {})",
            "resident set now",
            b(self.resident_bytes),
            b(self.resident_peak_bytes)
        )?;
        writeln!(
            f,
            "  {:<30} {:>12}",
            "estimate",
            crate::scene::format_bytes(self.estimate_bytes)
        )
    }
}

/// Heap bytes of the worlds a runner built, measured as each was built.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger {
    /// The primary world.
    pub primary: Option<u64>,
    /// Evaluation replicas: how many were built, and their bytes.
    pub replicas: (usize, Option<u64>),
    /// Batch worlds: how many were built, and their bytes.
    pub trainers: (usize, Option<u64>),
}

impl Ledger {
    /// Adds one world of `bytes` to `slot`.
    pub fn add(slot: &mut (usize, Option<u64>), bytes: Option<u64>) {
        slot.0 += 1;
        slot.1 = match (slot.0, slot.1, bytes) {
            (1, _, b) => b,
            (_, Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

impl Runner {
    /// What this run holds now, owner by owner, beside the estimate.
    pub fn memory(&self) -> MemoryReport {
        let images = |s: &crate::data::ImageSet| (s.images.capacity() + s.labels.capacity()) as u64;
        let caches: u64 = self
            .caches
            .iter()
            .map(|c| {
                let slots =
                    (c.entries.capacity() * std::mem::size_of::<Option<Box<[u16]>>>()) as u64;
                let held: u64 = c.entries.iter().flatten().map(|e| 2 * e.len() as u64).sum();
                slots + held
            })
            .sum();
        let mut owners = vec![
            (
                "datasets (train + test)".to_string(),
                Some(images(&self.data.train) + images(&self.data.test)),
            ),
            ("primary world".to_string(), self.ledger.primary),
        ];
        let (n, bytes) = self.ledger.replicas;
        if n > 0 {
            owners.push((format!("{n} evaluation replica world(s)"), bytes));
        }
        let (n, bytes) = self.ledger.trainers;
        if n > 0 {
            owners.push((format!("{n} training batch world(s)"), bytes));
        }
        owners.push(("encoding caches".to_string(), Some(caches)));
        let resident = crate::alloc::resident();
        MemoryReport {
            estimate_bytes: self.scene.memory_estimate_for(&self.data.shape()).total,
            owners,
            heap_bytes: crate::alloc::live_bytes(),
            heap_peak_bytes: crate::alloc::peak_bytes(),
            resident_bytes: resident.map(|r| r.0),
            resident_peak_bytes: resident.map(|r| r.1),
        }
    }
}
