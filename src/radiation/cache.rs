//! The multi-level radiation cache of SPEC 5 and its statistics.
//!
//! - **Level 1, the pattern cache** ([`PatternCache`]): key (u, signature, top_k) with the
//!   parameter version stored in the entry, value the K targets. The signature is φa\[u\]_d div
//!   q per dimension, so with q = 1 a hit is the kernel's own answer for the same inputs. An
//!   entry whose version lags the current parameter version by more than `max_staleness` is a
//!   *stale miss*: it is dropped and recomputed, never served. With q = 1 and staleness 0 the
//!   cache is exact; otherwise it is reported as approximate. True LRU eviction (the `lru`
//!   crate) with the ahash hasher under fixed seeds, so eviction order (and thus every
//!   approximate answer) depends only on the sequence of lookups.
//! - **Level 2, static neighbours**, and **level 3, candidate sets**, are precomputed per node
//!   at build: the static successor lists, and the resident phasor matrix from which each
//!   source's candidates are all rows but its exclusion list (itself and its level-2 list).
//!   Only rows of nodes whose phases change are rewritten. Their lookups always hit.
//!
//! This module knows nothing of the ECS; the radiation systems consult it in source order, so
//! its contents never depend on the thread count.

use std::num::NonZeroUsize;

use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::model::MAX_DIM;

/// Key of a pattern-cache entry: node, quantised phase signature, top_k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PatternKey {
    node: u32,
    top_k: u16,
    signature: [u16; MAX_DIM],
}

/// A cached answer and the parameter version it was computed at.
#[derive(Clone, Debug)]
struct PatternEntry {
    version: u64,
    targets: Box<[u32]>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// An entry recent enough to serve: the targets.
    Hit(&'a [u32]),
    /// No entry for the key.
    Miss,
    /// An entry too old for `max_staleness`; it has been dropped.
    Stale,
}

/// Event counts of one cache level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Lookups answered from the level.
    pub hits: u64,
    /// Lookups that found no entry.
    pub misses: u64,
    /// Lookups that found an entry older than `max_staleness` allows.
    pub stale_misses: u64,
    /// Entries removed to respect the capacity.
    pub evictions: u64,
}

impl Counters {
    /// The counts added since `earlier` (an earlier reading of the same counters).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
            stale_misses: self.stale_misses.saturating_sub(earlier.stale_misses),
            evictions: self.evictions.saturating_sub(earlier.evictions),
        }
    }

    /// hits / (hits + misses + stale misses); `None` without lookups.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses + self.stale_misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }

    /// Adds another set of counts.
    pub fn add(&mut self, other: &Counters) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.stale_misses += other.stale_misses;
        self.evictions += other.evictions;
    }
}

/// Statistics of one cache level, as printed and written into reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    /// `pattern`, `static` or `candidates`.
    pub level: String,
    /// Lookups answered from the level.
    pub hits: u64,
    /// Lookups that found no entry.
    pub misses: u64,
    /// Lookups that found an entry too old to serve.
    pub stale_misses: u64,
    /// Entries removed to respect the capacity.
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes held now (entries, their targets and the LRU's per-entry links and map slot).
    pub bytes: u64,
    /// hits / (hits + misses + stale misses); `None` before the first lookup.
    pub hit_rate: Option<f64>,
}

impl LevelStats {
    /// Builds the statistics from counts and sizes.
    pub fn new(level: &str, c: &Counters, entries: u64, bytes: u64) -> LevelStats {
        LevelStats {
            level: level.to_string(),
            hits: c.hits,
            misses: c.misses,
            stale_misses: c.stale_misses,
            evictions: c.evictions,
            entries,
            bytes,
            hit_rate: c.hit_rate(),
        }
    }

    /// Sums the statistics of the same level over several worlds (evaluation replicas).
    pub fn sum(levels: &[&LevelStats]) -> Option<LevelStats> {
        let first = levels.first()?;
        let mut c = Counters::default();
        let (mut entries, mut bytes) = (0, 0);
        for l in levels {
            c.add(&Counters {
                hits: l.hits,
                misses: l.misses,
                stale_misses: l.stale_misses,
                evictions: l.evictions,
            });
            entries += l.entries;
            bytes += l.bytes;
        }
        Some(LevelStats::new(&first.level, &c, entries, bytes))
    }
}

/// Level 1: (node, signature, top_k) -> targets, with parameter versions and true LRU eviction.
pub struct PatternCache {
    lru: LruCache<PatternKey, PatternEntry, ahash::RandomState>,
    quantization: u16,
    max_staleness: u64,
    counters: Counters,
    target_bytes: usize,
}

/// Bytes the LRU holds per entry besides the targets: the entry with its two list links, and
/// the hash map slot (key reference and entry pointer) with its control byte.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<PatternKey>()
    + std::mem::size_of::<PatternEntry>()
    + 2 * std::mem::size_of::<usize>()
    + 2 * std::mem::size_of::<usize>()
    + 1;

impl PatternCache {
    /// An empty cache of at most `capacity` entries (at least 1), signature quantisation
    /// `quantization` (at least 1) and `max_staleness` tolerated parameter versions.
    pub fn new(capacity: usize, quantization: u32, max_staleness: u64) -> PatternCache {
        PatternCache {
            lru: LruCache::with_hasher(
                NonZeroUsize::new(capacity.max(1)).expect("capacity is at least 1"),
                // Fixed seeds: the map's layout is the same on every run.
                ahash::RandomState::with_seeds(
                    0x243f_6a88_85a3_08d3,
                    0x1319_8a2e_0370_7344,
                    0xa409_3822_299f_31d0,
                    0x082e_fa98_ec4e_6c89,
                ),
            ),
            quantization: quantization.clamp(1, u32::from(u16::MAX)) as u16,
            max_staleness,
            counters: Counters::default(),
            target_bytes: 0,
        }
    }

    /// Whether every hit is exactly what the kernel would return (q = 1, staleness 0).
    pub fn is_exact(&self) -> bool {
        self.quantization == 1 && self.max_staleness == 0
    }

    /// The key of source `node` with activation phase `phase` asking for `top_k` targets.
    pub fn key(&self, node: u32, phase: &[u16], top_k: usize) -> PatternKey {
        let mut signature = [0u16; MAX_DIM];
        for (s, &p) in signature.iter_mut().zip(phase) {
            *s = p / self.quantization;
        }
        PatternKey {
            node,
            top_k: top_k.min(usize::from(u16::MAX)) as u16,
            signature,
        }
    }

    /// Looks `key` up at parameter version `version`, counting the outcome. A hit becomes the
    /// most recently used entry; a stale entry is dropped.
    pub fn lookup(&mut self, key: &PatternKey, version: u64) -> Lookup<'_> {
        let fresh = match self.lru.peek(key) {
            None => {
                self.counters.misses += 1;
                return Lookup::Miss;
            }
            Some(e) => version.saturating_sub(e.version) <= self.max_staleness,
        };
        if !fresh {
            self.counters.stale_misses += 1;
            if let Some(e) = self.lru.pop(key) {
                self.target_bytes -= e.targets.len() * std::mem::size_of::<u32>();
            }
            return Lookup::Stale;
        }
        self.counters.hits += 1;
        match self.lru.get(key) {
            Some(e) => Lookup::Hit(&e.targets),
            None => unreachable!("the entry was just peeked"),
        }
    }

    /// Stores the targets computed for `key` at parameter version `version`, evicting the least
    /// recently used entry when full.
    pub fn insert(&mut self, key: PatternKey, version: u64, targets: &[u32]) {
        self.target_bytes += std::mem::size_of_val(targets);
        let entry = PatternEntry {
            version,
            targets: targets.into(),
        };
        if let Some((old_key, old)) = self.lru.push(key, entry) {
            self.target_bytes -= old.targets.len() * std::mem::size_of::<u32>();
            if old_key != key {
                self.counters.evictions += 1;
            }
        }
    }

    /// Drops every entry (the counters stay).
    pub fn clear(&mut self) {
        self.lru.clear();
        self.target_bytes = 0;
    }

    /// Zeroes the counts (the entries stay).
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lru.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }

    /// Bytes held (see [`LevelStats::bytes`]).
    pub fn bytes(&self) -> usize {
        self.lru.len() * ENTRY_OVERHEAD + self.target_bytes
    }

    /// Counts so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Statistics of this level.
    pub fn stats(&self) -> LevelStats {
        LevelStats::new(
            "pattern",
            &self.counters,
            self.len() as u64,
            self.bytes() as u64,
        )
    }

    /// The entries, least recently used first (persistent state: with an approximate cache
    /// they decide later answers).
    pub fn save(&self) -> crate::state::PatternCacheState {
        let mut s = crate::state::PatternCacheState::default();
        for (key, entry) in self.lru.iter().rev() {
            s.nodes.push(key.node);
            s.top_k.push(key.top_k);
            s.signatures.extend_from_slice(&key.signature);
            s.versions.push(entry.version);
            s.counts.push(entry.targets.len() as u32);
            s.targets.extend_from_slice(&entry.targets);
        }
        s
    }

    /// Checks that saved entries are consistent (what [`PatternCache::load`] needs).
    pub fn check(s: &crate::state::PatternCacheState) -> Result<(), String> {
        let n = s.nodes.len();
        let total: u64 = s.counts.iter().map(|&c| u64::from(c)).sum();
        if s.top_k.len() != n
            || s.versions.len() != n
            || s.counts.len() != n
            || s.signatures.len() != n * MAX_DIM
            || total != s.targets.len() as u64
        {
            return Err("the pattern cache entries have inconsistent lengths".into());
        }
        Ok(())
    }

    /// Replaces the entries with saved ones, in their recency order, without counting events
    /// (the counters are statistics and stay). A smaller capacity keeps the most recent
    /// entries, as the LRU would have. Changes nothing on error.
    pub fn load(&mut self, s: &crate::state::PatternCacheState) -> Result<(), String> {
        PatternCache::check(s)?;
        let n = s.nodes.len();
        self.clear();
        let counters = self.counters;
        let mut at = 0usize;
        for i in 0..n {
            let mut signature = [0u16; MAX_DIM];
            signature.copy_from_slice(&s.signatures[i * MAX_DIM..(i + 1) * MAX_DIM]);
            let key = PatternKey {
                node: s.nodes[i],
                top_k: s.top_k[i],
                signature,
            };
            let count = s.counts[i] as usize;
            self.insert(key, s.versions[i], &s.targets[at..at + count]);
            at += count;
        }
        self.counters = counters;
        Ok(())
    }

    /// Nodes of the entries from most to least recently used (for inspection and tests).
    pub fn nodes_by_recency(&self) -> Vec<u32> {
        self.lru.iter().map(|(k, _)| k.node).collect()
    }
}

impl std::fmt::Debug for PatternCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternCache")
            .field("entries", &self.lru.len())
            .field("capacity", &self.lru.cap())
            .field("quantization", &self.quantization)
            .field("max_staleness", &self.max_staleness)
            .field("counters", &self.counters)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut c = PatternCache::new(3, 1, 0);
        for node in 0..3 {
            let k = c.key(node, &[node as u16], 6);
            c.insert(k, 0, &[node]);
        }
        assert_eq!(c.nodes_by_recency(), vec![2, 1, 0]);
        // Using 0 makes 1 the least recently used, so 1 goes when 3 arrives.
        let k0 = c.key(0, &[0], 6);
        assert_eq!(c.lookup(&k0, 0), Lookup::Hit(&[0]));
        let k3 = c.key(3, &[3], 6);
        c.insert(k3, 0, &[3]);
        assert_eq!(c.nodes_by_recency(), vec![3, 0, 2]);
        let k1 = c.key(1, &[1], 6);
        assert_eq!(c.lookup(&k1, 0), Lookup::Miss);
        assert_eq!(c.counters().evictions, 1);
        // Then 2 is the oldest.
        let k4 = c.key(4, &[4], 6);
        c.insert(k4, 0, &[4]);
        assert_eq!(c.nodes_by_recency(), vec![4, 3, 0]);
        assert_eq!(c.counters().evictions, 2);
    }

    #[test]
    fn counts_a_scripted_sequence() {
        let mut c = PatternCache::new(2, 1, 1);
        let a = c.key(7, &[10, 20], 6);
        let b = c.key(8, &[10, 20], 6);
        let a_other_k = c.key(7, &[10, 20], 5);
        assert_eq!(c.lookup(&a, 0), Lookup::Miss); // miss 1
        c.insert(a, 0, &[1, 2]);
        assert_eq!(c.lookup(&a, 0), Lookup::Hit(&[1, 2])); // hit 1
        assert_eq!(c.lookup(&a, 1), Lookup::Hit(&[1, 2])); // hit 2 (one version behind is allowed)
        assert_eq!(c.lookup(&a, 2), Lookup::Stale); // stale 1, dropped
        assert_eq!(c.lookup(&a, 2), Lookup::Miss); // miss 2
        assert_eq!(c.lookup(&a_other_k, 2), Lookup::Miss); // miss 3: top_k is part of the key
        c.insert(a, 2, &[3]);
        c.insert(b, 2, &[4]);
        c.insert(a_other_k, 2, &[5]); // evicts a
        assert_eq!(c.lookup(&b, 2), Lookup::Hit(&[4])); // hit 3
        let s = c.stats();
        assert_eq!(
            (s.hits, s.misses, s.stale_misses, s.evictions, s.entries),
            (3, 3, 1, 1, 2)
        );
        assert_eq!(s.hit_rate, Some(3.0 / 7.0));
        assert_eq!(s.bytes, (2 * ENTRY_OVERHEAD + 2 * 4) as u64);
    }

    #[test]
    fn quantisation_shares_entries_between_nearby_phases() {
        let mut c = PatternCache::new(10, 4, 0);
        let k = c.key(1, &[8, 9], 6);
        assert_eq!(k, c.key(1, &[11, 10], 6));
        assert_ne!(k, c.key(1, &[12, 9], 6));
        assert!(!c.is_exact());
        assert!(PatternCache::new(10, 1, 0).is_exact());
        c.insert(k, 0, &[9]);
        assert_eq!(c.lookup(&c.key(1, &[11, 11], 6), 0), Lookup::Hit(&[9]));
        assert_eq!(
            PatternCache::new(1, 1, 0).stats().hit_rate,
            None,
            "no lookups, no rate"
        );
    }
}
