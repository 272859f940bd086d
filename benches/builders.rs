//! Criterion benches of what is built once per load: the layered graph at the largest node
//! count a scene allows, and generated class encodings at the largest class count.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use neurograph::graph::{Graph, Roles};
use neurograph::model::rng::{self, Stream};
use neurograph::model::{ClassEncodings, Tables};

/// `Graph::layered` with the quickstart's roles and `Layered(cardinality: 6, layers: 4)` at
/// 1 000 000 nodes, the documented maximum of `architecture.total_nodes`.
fn layered_graph(c: &mut Criterion) {
    let roles = Roles {
        total: 1_000_000,
        inputs: 100,
        outputs: 200,
    };
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("layered_graph_1m_nodes", |b| {
        b.iter(|| {
            let mut r = rng::stream(7, Stream::Graph);
            black_box(Graph::layered(roles, 6, 4, &mut r))
        })
    });
    group.finish();
}

/// `ClassEncodings::separated` at 1000 classes (the documented maximum of
/// `architecture.classes`) and D = 5 (the default) and 16 (the largest).
fn separated_encodings(c: &mut Criterion) {
    let t = Tables::new(512, 1024);
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for dim in [5, 16] {
        group.bench_function(format!("separated_encodings_1000_classes_d{dim}"), |b| {
            b.iter(|| {
                let mut r = rng::stream(0, Stream::Encodings);
                black_box(ClassEncodings::separated(&t, 1000, dim, &mut r))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layered_graph, separated_encodings);
criterion_main!(benches);
