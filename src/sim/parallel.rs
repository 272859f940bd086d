//! Intra-system parallelism: contiguous runs of work on scoped threads.
//!
//! A system splits its per-source output buffers into one contiguous part per thread and hands
//! them to [`run_parts`]; each part writes only its own slots, so results never depend on the
//! thread count. Threads are scoped and end with the call: nothing spins while the next system
//! runs, which matters on small machines where an idle-spinning worker steals a core from the
//! thread doing the sequential work.

/// Runs `work` on every part, the first on the calling thread and the others on scoped threads.
pub fn run_parts<P: Send>(parts: Vec<P>, work: impl Fn(P) + Sync) {
    let work = &work;
    std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        let mine = parts.next();
        for part in parts {
            scope.spawn(move || work(part));
        }
        if let Some(part) = mine {
            work(part);
        }
    });
}

/// Splits `0..items` into at most `threads` contiguous ranges of whole `grain`-sized chunks.
pub fn split_ranges(items: usize, threads: usize, grain: usize) -> Vec<std::ops::Range<usize>> {
    let chunks = items.div_ceil(grain.max(1));
    let threads = threads.clamp(1, chunks.max(1));
    let per = chunks.div_ceil(threads) * grain.max(1);
    (0..threads)
        .map(|t| (t * per).min(items)..((t + 1) * per).min(items))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Splits `slice` into consecutive pieces of the given lengths.
pub fn split_by_lengths<'a, T>(mut slice: &'a mut [T], lengths: &[usize]) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let (head, tail) = std::mem::take(&mut slice).split_at_mut(len);
        pieces.push(head);
        slice = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(split_ranges(100, 2, 32), vec![0..64, 64..100]);
        assert_eq!(split_ranges(10, 4, 32), vec![0..10]);
        assert_eq!(split_ranges(0, 2, 32), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(split_ranges(96, 3, 32), vec![0..32, 32..64, 64..96]);
    }

    #[test]
    fn parts_all_run() {
        let mut data = vec![0u32; 10];
        let parts = split_by_lengths(&mut data, &[3, 3, 4]);
        run_parts(parts, |p| p.iter_mut().for_each(|x| *x += 1));
        assert_eq!(data, vec![1; 10]);
    }
}
