//! Measuring memory: a counting global allocator and the process's resident set.
//!
//! [`Counting`] wraps the system allocator and keeps the bytes currently allocated and their
//! peak in two atomics. The `neurograph` binary (and the tests that check the memory
//! estimate) install it with `#[global_allocator]`; a program that does not gets `None` from
//! [`live_bytes`], so nothing pretends to have measured. [`heap_delta`] measures what one
//! owner (a dataset, a world) allocates while it is built, which is how [`crate::run::Runner`]
//! reports each owner's size; [`resident`] reads the kernel's view of the whole process.

#![expect(
    unsafe_code,
    reason = "a GlobalAlloc implementation is unsafe by definition; it only forwards to System"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live and peak bytes (install with `#[global_allocator]`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting;

impl Counting {
    fn grew(bytes: usize) {
        let live = LIVE.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        PEAK.fetch_max(live, Ordering::Relaxed);
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
    }

    fn shrank(bytes: usize) {
        LIVE.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// contract `GlobalAlloc` asks for is `System`'s; the counters are only atomics on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Counting::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Counting::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        Counting::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Counting::shrank(layout.size());
            Counting::grew(new_size);
        }
        p
    }
}

/// Bytes allocated on the heap now, if [`Counting`] is the global allocator.
pub fn live_bytes() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| LIVE.load(Ordering::Relaxed))
}

/// The most bytes ever allocated at once, if [`Counting`] is the global allocator.
pub fn peak_bytes() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| PEAK.load(Ordering::Relaxed))
}

/// Starts a new peak: from now on [`peak_bytes`] counts from the bytes live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Runs `f` and returns its result with the heap bytes it left allocated (what it built
/// holds), if [`Counting`] is installed. Other threads allocating meanwhile are counted too,
/// so measure while they are idle.
pub fn heap_delta<T>(f: impl FnOnce() -> T) -> (T, Option<u64>) {
    let before = live_bytes();
    let out = f();
    let after = live_bytes();
    let delta = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        (None, Some(a)) => Some(a),
        _ => None,
    };
    (out, delta)
}

/// The process's resident set now and at its peak (`VmRSS`, `VmHWM` from `/proc/self/status`),
/// in bytes; `None` where the platform has no such file.
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_where_the_platform_has_it() {
        if let Some((now, peak)) = resident() {
            assert!(now > 0 && peak >= now, "{now} {peak}");
        }
    }
}
