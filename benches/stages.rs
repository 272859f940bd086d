//! Criterion benches, grouped by what they measure: the radiation kernel against brute force at
//! the production shape, and one whole forward pass of the production scene.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use neurograph::model::rng;
use neurograph::model::tables::Tables;
use neurograph::radiation::{
    Backend, PhasorMatrix, Scratch, Source, top_k_batch, top_k_brute_force,
};
use neurograph::scene::Scene;
use neurograph::sim::Simulation;

/// 600 active sources against 1000 nodes, D = 5, N = 512, K = 6: one production timestep.
fn radiation(c: &mut Criterion) {
    let (nodes, sources, dim, bins) = (1000usize, 600usize, 5usize, 512u32);
    let tables = Tables::new(bins as usize, 1024);
    let mut r = rng::stream_with(1, "bench", 0);
    let phases: Vec<u16> = (0..nodes * dim)
        .map(|_| rng::below(&mut r, bins) as u16)
        .collect();
    let acts: Vec<u16> = (0..sources * dim)
        .map(|_| rng::below(&mut r, bins) as u16)
        .collect();
    let succ: Vec<Vec<u32>> = (0..sources)
        .map(|_| {
            let mut s: Vec<u32> = (0..6).map(|_| rng::below(&mut r, nodes as u32)).collect();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    let phasors = PhasorMatrix::new(&tables, &phases, dim);
    let mut group = c.benchmark_group("radiation");
    group.throughput(Throughput::Elements((sources * nodes) as u64));
    group.bench_function("kernel_600x1000", |b| {
        let mut scratch = Scratch::default();
        let (mut targets, mut counts) = (vec![0u32; sources * 6], vec![0u32; sources]);
        let backend = Backend::detect();
        b.iter(|| {
            top_k_batch(
                backend,
                &tables,
                &phasors,
                &phases,
                sources,
                |u| Source {
                    index: u as u32,
                    phase: &acts[u * dim..(u + 1) * dim],
                    successors: &succ[u],
                },
                6,
                &mut scratch,
                &mut targets,
                &mut counts,
            );
            black_box(&targets);
        })
    });
    group.sample_size(10);
    group.bench_function("brute_force_600x1000", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for u in 0..sources {
                let src = Source {
                    index: u as u32,
                    phase: &acts[u * dim..(u + 1) * dim],
                    successors: &succ[u],
                };
                top_k_brute_force(&tables, &phases, dim, &src, 6, &mut out);
                black_box(&out);
            }
        })
    });
    group.finish();
}

/// One forward pass of the production scene (SPEC defaults) on synthetic digits.
fn forward_pass(c: &mut Criterion) {
    let mut scene = Scene {
        seed: 1,
        ..Scene::default()
    };
    scene.schedule.threads = 1;
    let mut sim = Simulation::new(&scene).expect("default scene builds");
    let data = neurograph::data::synthetic(1, 1, 16);
    let len = sim.encoding_len();
    let encoded: Vec<(Vec<u16>, Vec<u16>, u8)> = (0..16)
        .map(|i| {
            let (mut p, mut m) = (vec![0; len], vec![0; len]);
            sim.encode(data.test.image(i), &mut p, &mut m);
            (p, m, data.test.label(i))
        })
        .collect();
    let mut group = c.benchmark_group("sample");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("forward_pass_production", |b| {
        b.iter(|| {
            let (p, m, l) = &encoded[i % encoded.len()];
            i += 1;
            black_box(sim.run_encoded(p, m, *l))
        })
    });
    group.bench_function("encode_production", |b| {
        let (mut p, mut m) = (vec![0; len], vec![0; len]);
        b.iter(|| sim.encode(data.test.image(0), &mut p, &mut m))
    });
    group.finish();
}

criterion_group!(benches, radiation, forward_pass);
criterion_main!(benches);
