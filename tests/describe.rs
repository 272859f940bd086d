//! Tests of the schedule descriptions on the real schedules of a small simulation.

use bevy_ecs::schedule::Schedule;
use neurograph::scene::{self, ExecutorKind, Granularity, Scene};
use neurograph::sim::Simulation;
use neurograph::sim::describe::{ScheduleDescription, describe, to_dot};
use neurograph::sim::schedule::{sample_end, sample_start, timestep};

fn small_scene(granularity: Granularity) -> Scene {
    let mut s = scene::parse(include_str!("../scenes/quickstart.ron"), "quickstart.ron").unwrap();
    s.schedule.granularity = granularity;
    s
}

/// The three schedules of a small simulation, freshly built and initialised against its world.
fn described(granularity: Granularity) -> Vec<ScheduleDescription> {
    let scene = small_scene(granularity);
    let mut sim = Simulation::new(&scene).unwrap();
    let world = sim.world_mut();
    let mut out = Vec::new();
    let schedules: [Schedule; 3] = [
        sample_start(ExecutorKind::Single),
        timestep(ExecutorKind::Single, granularity),
        sample_end(ExecutorKind::Single),
    ];
    for mut s in schedules {
        s.initialize(world).unwrap();
        out.push(describe(&s, world, "single"));
    }
    out
}

#[test]
fn timestep_conflicts_are_all_ordered() {
    for g in [Granularity::Stage, Granularity::Split { parts: 3 }] {
        let d = described(g);
        let step = &d[1];
        assert_eq!(step.label, "Timestep");
        assert!(!step.conflicts.is_empty(), "{step}");
        for c in &step.conflicts {
            assert!(!c.ordering.is_empty(), "{c:?}");
            assert_ne!(c.ordering, "unordered", "{c:?}");
            assert!(!c.on.is_empty(), "{c:?}");
        }
        for sd in &d {
            for c in &sd.conflicts {
                assert_ne!(c.ordering, "unordered", "{}: {c:?}", sd.label);
            }
        }
    }
}

#[test]
fn timestep_lists_stages_systems_and_order() {
    let d = described(Granularity::Stage);
    let step = &d[1];
    let set_names: Vec<&str> = step.sets.iter().map(|s| s.name.as_str()).collect();
    for stage in [
        "Stage::Radiation",
        "Stage::Forward",
        "Stage::Eviction",
        "Stage::Termination",
    ] {
        assert!(set_names.contains(&stage), "{set_names:?}");
    }
    // Orders are the positions 0..n.
    for (i, s) in step.systems.iter().enumerate() {
        assert_eq!(s.order, i);
    }
    // Every set's members come after every system of the sets it is ordered after.
    let pos = |name: &str| step.systems.iter().position(|s| s.name == name);
    let forward = step
        .sets
        .iter()
        .find(|s| s.name == "Stage::Forward")
        .unwrap();
    assert!(forward.after.contains(&"Stage::Radiation".to_string()));
    let radiation = step
        .sets
        .iter()
        .find(|s| s.name == "Stage::Radiation")
        .unwrap();
    for f in &forward.systems {
        for r in &radiation.systems {
            assert!(pos(r) < pos(f), "{r} should run before {f}");
        }
    }
    // Direct dependencies only, and every one earlier in the order.
    for s in &step.systems {
        for a in &s.after {
            assert!(pos(a).unwrap() < s.order, "{} after {a}", s.name);
        }
    }
    {
        let emit = step
            .systems
            .iter()
            .find(|s| s.name == "forward::emit")
            .unwrap();
        assert_eq!(emit.sets, vec!["Stage::Forward".to_string()]);
        assert!(emit.writes.contains(&"Emissions".to_string()), "{emit:?}");
        assert!(
            emit.reads.contains(&"ActiveSnapshot".to_string()),
            "{emit:?}"
        );
        let apply = step
            .systems
            .iter()
            .find(|s| s.name == "forward::apply_arrivals")
            .unwrap();
        assert_eq!(
            apply.after,
            vec!["forward::accumulate_arrivals".to_string()]
        );
        assert!(
            step.conflicts
                .iter()
                .any(|c| c.ordering.contains("chain in Stage::Forward"))
        );
        assert!(
            step.conflicts
                .iter()
                .any(|c| c.ordering.contains("via set order"))
        );
    }
}

#[test]
fn split_radiation_parts_are_named_apart() {
    let d = described(Granularity::Split { parts: 2 });
    let names: Vec<&str> = d[1].systems.iter().map(|s| s.name.as_str()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    print!("{}", d[1]);
}

#[test]
fn dot_has_clusters_edges_and_conflicts() {
    let d = described(Granularity::Stage);
    let dot = to_dot(&d);
    assert!(dot.starts_with("digraph"));
    assert!(dot.matches("subgraph cluster_").count() >= 3 + 4, "{dot}");
    assert!(dot.contains("cluster_0 {") && dot.contains("cluster_2 {"));
    assert!(dot.contains(" -> "));
    assert!(dot.contains("color=red"));
    let braces = dot.matches('{').count();
    assert_eq!(braces, dot.matches('}').count());
    serde_json::to_string(&d).unwrap();
}

#[test]
fn uninitialised_schedule_has_no_systems() {
    let world = bevy_ecs::world::World::new();
    let s = timestep(ExecutorKind::Single, Granularity::Stage);
    let d = describe(&s, &world, "single");
    assert!(d.systems.is_empty() && d.conflicts.is_empty());
}
