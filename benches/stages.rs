//! Criterion benches, grouped by what they measure: the radiation kernel against a same-shape
//! matrixmultiply GEMM and brute force, and one whole forward pass of the production scene.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use neurograph::model::rng;
use neurograph::model::tables::Tables;
use neurograph::radiation::{
    Backend, PhasorMatrix, Scratch, Source, top_k_batch, top_k_brute_force,
};
use neurograph::scene::Scene;
use neurograph::sim::Simulation;

/// Random node phases, source phases and sorted successor lists (6 per source).
struct Shape {
    nodes: usize,
    sources: usize,
    tables: Tables,
    phases: Vec<u16>,
    acts: Vec<u16>,
    succ: Vec<Vec<u32>>,
    phasors: PhasorMatrix,
}

const DIM: usize = 5;
const TOP_K: usize = 6;

impl Shape {
    fn new(sources: usize, nodes: usize) -> Shape {
        let bins = 512u32;
        let tables = Tables::new(bins as usize, 1024);
        let mut r = rng::stream_with(1, "bench", 0);
        let phases: Vec<u16> = (0..nodes * DIM)
            .map(|_| rng::below(&mut r, bins) as u16)
            .collect();
        let acts: Vec<u16> = (0..sources * DIM)
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
        let phasors = PhasorMatrix::new(&tables, &phases, DIM);
        Shape {
            nodes,
            sources,
            tables,
            phases,
            acts,
            succ,
            phasors,
        }
    }

    fn source(&self, u: usize) -> Source<'_> {
        Source {
            index: u as u32,
            phase: &self.acts[u * DIM..(u + 1) * DIM],
            successors: &self.succ[u],
        }
    }

    /// The exact top-K of every source with the batched kernel.
    fn kernel(
        &self,
        backend: Backend,
        scratch: &mut Scratch,
        targets: &mut [u32],
        counts: &mut [u32],
    ) {
        top_k_batch(
            backend,
            &self.tables,
            &self.phasors,
            &self.phases,
            self.sources,
            |u| self.source(u),
            TOP_K,
            scratch,
            targets,
            counts,
        );
    }

    /// The yardstick: a same-shape f32 GEMM, (sources × 2D) · (2D × nodes), with matrixmultiply.
    fn gemm_operands(&self) -> (Vec<f32>, Vec<f32>) {
        let k = 2 * DIM;
        let mut a = vec![0.0f32; self.sources * k];
        for u in 0..self.sources {
            for d in 0..DIM {
                let p = self.acts[u * DIM + d] as usize;
                a[u * k + 2 * d] = self.tables.cos[p];
                a[u * k + 2 * d + 1] = -self.tables.sin[p];
            }
        }
        let mut b = vec![0.0f32; k * self.nodes];
        for v in 0..self.nodes {
            for d in 0..DIM {
                let p = self.phases[v * DIM + d] as usize;
                b[(2 * d) * self.nodes + v] = self.tables.cos[p];
                b[(2 * d + 1) * self.nodes + v] = self.tables.sin[p];
            }
        }
        (a, b)
    }
}

/// The radiation kernel (exact top-K of every source, each backend the CPU has) against the same-shape matrixmultiply
/// GEMM (scores only, no selection) and brute force, at the production shape (600 active
/// sources × 1000 nodes, D = 5, N = 512, K = 6) and at 10 000 nodes. Throughput is in scored
/// (source, node) pairs.
fn radiation(c: &mut Criterion) {
    let mut group = c.benchmark_group("radiation");
    for (sources, nodes) in [(600usize, 1000usize), (600, 10_000)] {
        let shape = Shape::new(sources, nodes);
        group.throughput(Throughput::Elements((sources * nodes) as u64));
        for backend in Backend::supported() {
            let name = backend.name().replace([' ', '+', '-'], "_");
            group.bench_function(format!("kernel_{name}_{sources}x{nodes}"), |b| {
                let mut scratch = Scratch::default();
                let (mut targets, mut counts) = (vec![0u32; sources * TOP_K], vec![0u32; sources]);
                b.iter(|| {
                    shape.kernel(backend, &mut scratch, &mut targets, &mut counts);
                    black_box(&targets);
                })
            });
        }
        group.bench_function(format!("gemm_{sources}x{nodes}"), |b| {
            let (a, bm) = shape.gemm_operands();
            let mut out = vec![0.0f32; sources * nodes];
            let k = 2 * DIM;
            b.iter(|| {
                // SAFETY: a is sources × k, bm is k × nodes and out is sources × nodes, all
                // row-major with the strides given.
                #[expect(unsafe_code, reason = "matrixmultiply's GEMM takes raw pointers")]
                unsafe {
                    matrixmultiply::sgemm(
                        sources,
                        k,
                        nodes,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        bm.as_ptr(),
                        nodes as isize,
                        1,
                        0.0,
                        out.as_mut_ptr(),
                        nodes as isize,
                        1,
                    );
                }
                black_box(&out);
            })
        });
    }
    group.sample_size(10);
    for (sources, nodes) in [(600usize, 1000usize), (600, 10_000)] {
        let shape = Shape::new(sources, nodes);
        group.throughput(Throughput::Elements((sources * nodes) as u64));
        group.bench_function(format!("brute_force_{sources}x{nodes}"), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                for u in 0..shape.sources {
                    top_k_brute_force(
                        &shape.tables,
                        &shape.phases,
                        DIM,
                        &shape.source(u),
                        TOP_K,
                        &mut out,
                    );
                    black_box(&out);
                }
            })
        });
    }
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
