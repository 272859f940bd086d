//! Descriptions of the built schedules, for `neurograph inspect SCENE --schedule [--dot FILE]`.
//!
//! [`describe`] reads an initialised [`Schedule`]: its system sets and their members, its
//! systems in executable (topological) order with the components and resources each reads and
//! writes, and every pair of systems whose data access conflicts together with how the
//! dependency graph orders the pair. [`to_dot`] renders descriptions as a Graphviz graph.
//!
//! Names come from bevy's `DebugName`s, which hold real names only with bevy_ecs's `debug`
//! feature; without it systems are called `system#N` and data `component#N`.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;

use bevy_ecs::component::ComponentId;
use bevy_ecs::query::{Access, AccessConflicts, InvertibleComponentIdSet};
use bevy_ecs::schedule::graph::Direction;
use bevy_ecs::schedule::{
    ApplyDeferred, NodeId, Schedule, ScheduleGraph, Schedules, SystemKey, SystemSet, SystemSetKey,
    SystemWithAccess,
};
use bevy_ecs::system::{System, SystemAccess};
use bevy_ecs::utils::prelude::DebugName;
use bevy_ecs::world::World;
use serde::Serialize;

use crate::sim::schedule::Stage;

/// What bevy's names read without its `debug` feature.
const NAME_DISABLED: &str = "<Enable the debug feature";
/// Module prefix trimmed from the simulation's own system names.
const SYSTEMS_PREFIX: &str = "neurograph::sim::systems::";

/// A description of one built schedule.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduleDescription {
    /// The schedule's label, e.g. `Timestep`.
    pub label: String,
    /// The executor it runs with, as given to [`describe`].
    pub executor: String,
    /// The named system sets, in the order they were first configured.
    pub sets: Vec<SetInfo>,
    /// The systems, in executable order.
    pub systems: Vec<SystemInfo>,
    /// Every pair of systems whose data access conflicts, and how the pair is ordered.
    pub conflicts: Vec<ConflictInfo>,
}

/// One named system set.
#[derive(Clone, Debug, Serialize)]
pub struct SetInfo {
    /// The set, e.g. `Stage::Forward`.
    pub name: String,
    /// Its member systems (directly or through nested sets), in executable order.
    pub systems: Vec<String>,
    /// Sets and systems it is ordered after.
    pub after: Vec<String>,
}

/// One system.
#[derive(Clone, Debug, Serialize)]
pub struct SystemInfo {
    /// Position in the executable (topological) order.
    pub order: usize,
    /// Short name, e.g. `forward::emit`; instances of one system type get a `[k]` suffix.
    pub name: String,
    /// Named sets it belongs to, directly or through nested sets.
    pub sets: Vec<String>,
    /// Components and resources it only reads.
    pub reads: Vec<String>,
    /// Components and resources it writes; `World` for an exclusive system.
    pub writes: Vec<String>,
    /// Its direct dependencies: the systems it runs after, transitive ones left out.
    pub after: Vec<String>,
}

/// A pair of systems whose data access conflicts.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictInfo {
    /// The system that comes first in executable order.
    pub a: String,
    /// The other system.
    pub b: String,
    /// The components and resources they conflict on; `World` when the conflict is on the
    /// whole world (an exclusive system).
    pub on: Vec<String>,
    /// How the dependency graph orders the pair, e.g. `a before b (chain in Stage::Forward)`,
    /// or `unordered` when nothing does (a build at ambiguity level error refuses that).
    pub ordering: String,
}

/// Why one edge of the dependency graph exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// System to system: a `chain`.
    Chain,
    /// To or from a system used as a set: `.before(system)` / `.after(system)`.
    Explicit,
    /// To or from a named set: set ordering.
    SetOrder,
}

/// Describes an initialised schedule (call after `Schedule::initialize`). A schedule that was
/// never initialised has no executable order and is described with no systems.
pub fn describe(schedule: &Schedule, world: &World, executor: &str) -> ScheduleDescription {
    let graph = schedule.graph();
    let label = format!("{:?}", schedule.label());

    // Systems, in executable order.
    let entries: Vec<(SystemKey, &SystemWithAccess)> = schedule
        .systems_with_access()
        .map(|it| it.collect())
        .unwrap_or_default();
    let names = system_names(&entries);
    let index: HashMap<SystemKey, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let set_name = |key: SystemSetKey| -> Option<String> {
        let set = graph.system_sets.get(key)?;
        if set.system_type().is_some() {
            // A system used as a set: named after its system(s).
            let inside = member_systems(graph, NodeId::Set(key), &index);
            if let Some(&i) = inside.first() {
                return Some(base_name(&names[i]).to_string());
            }
        }
        if set.is_anonymous() {
            // bevy's own naming reads the systems, which an initialised schedule has moved
            // out of its graph: name it from its members here.
            let inside = member_systems(graph, NodeId::Set(key), &index);
            let inside: Vec<&str> = inside.iter().map(|&i| names[i].as_str()).collect();
            return Some(format!("({})", inside.join(", ")));
        }
        describe_set(graph, key)
    };
    let node_name = |node: NodeId| -> String {
        match node {
            NodeId::System(k) => index
                .get(&k)
                .map_or_else(|| "?".to_string(), |&i| names[i].clone()),
            NodeId::Set(k) => set_name(k).unwrap_or_else(|| "?".to_string()),
        }
    };
    let is_named_set = |key: SystemSetKey| {
        graph
            .system_sets
            .get(key)
            .is_some_and(|s| s.system_type().is_none() && !s.is_anonymous())
    };

    // Member systems of every set (through nested sets), as executable positions.
    let members = |node: NodeId| -> BTreeSet<usize> { member_systems(graph, node, &index) };

    // The dependency graph flattened to systems, each edge with the reason it exists.
    let n = entries.len();
    let mut edges: HashMap<(usize, usize), (EdgeKind, NodeId, NodeId)> = HashMap::new();
    for (u, v) in graph.dependency().graph().all_edges() {
        let kind = edge_kind(graph, u, v);
        for s in members(u) {
            for t in members(v) {
                let e = edges.entry((s, t)).or_insert((kind, u, v));
                if kind == EdgeKind::Chain {
                    *e = (kind, u, v);
                }
            }
        }
    }
    let mut successors = vec![Vec::new(); n];
    for &(s, t) in edges.keys() {
        successors[s].push(t);
    }
    for list in &mut successors {
        list.sort_unstable();
    }
    let reach = reachability(&successors);

    // Named sets containing each system.
    let mut system_sets: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut sets = Vec::new();
    for (key, _, _) in graph.system_sets.iter() {
        if !is_named_set(key) {
            continue;
        }
        let name = set_name(key).unwrap_or_default();
        let inside = members(NodeId::Set(key));
        for &i in &inside {
            system_sets[i].push(name.clone());
        }
        let after = graph
            .dependency()
            .graph()
            .neighbors_directed(NodeId::Set(key), Direction::Incoming)
            .map(node_name)
            .collect();
        sets.push(SetInfo {
            name,
            systems: inside.iter().map(|&i| names[i].clone()).collect(),
            after,
        });
    }

    let ignored: BTreeSet<ComponentId> = world
        .get_resource::<Schedules>()
        .map(|s| s.iter_ignored_ambiguities().copied().collect())
        .unwrap_or_default();
    let data_name = |id: ComponentId| component_name(world, id);

    let systems = entries
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let (reads, writes) = access_names(s.access(), &data_name);
            let preds: Vec<usize> = (0..n).filter(|&p| edges.contains_key(&(p, i))).collect();
            // Keep only the direct dependencies: drop p when it reaches another predecessor.
            let after = preds
                .iter()
                .filter(|&&p| !preds.iter().any(|&q| q != p && reach[p][q]))
                .map(|&p| names[p].clone())
                .collect();
            SystemInfo {
                order: i,
                name: names[i].clone(),
                sets: system_sets[i].clone(),
                reads,
                writes,
                after,
            }
        })
        .collect();

    // Conflicting pairs, as bevy's ambiguity check sees them (auto sync points and systems
    // marked ambiguous with everything left out).
    let mut conflicts = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            let (ka, sa) = entries[a];
            let (kb, sb) = entries[b];
            if graph.ambiguous_with_all.contains(&NodeId::System(ka))
                || graph.ambiguous_with_all.contains(&NodeId::System(kb))
            {
                continue;
            }
            let Some(on) = conflict_names(sa.access(), sb.access(), &ignored, &data_name) else {
                continue;
            };
            let ordering = if let Some(path) = find_path(&successors, a, b) {
                explain("a before b", &path, &edges, graph, &set_name, &node_name)
            } else if let Some(path) = find_path(&successors, b, a) {
                explain("b before a", &path, &edges, graph, &set_name, &node_name)
            } else {
                "unordered".to_string()
            };
            conflicts.push(ConflictInfo {
                a: names[a].clone(),
                b: names[b].clone(),
                on,
                ordering,
            });
        }
    }

    ScheduleDescription {
        label,
        executor: executor.to_string(),
        sets,
        systems,
        conflicts,
    }
}

/// Short, unique names of the systems: the path below `neurograph::sim::systems`, or bevy's
/// short name for other systems; repeated names get `[k]` suffixes.
fn system_names(entries: &[(SystemKey, &SystemWithAccess)]) -> Vec<String> {
    let base: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let name = s.name();
            if name.contains(NAME_DISABLED) {
                format!("system#{i}")
            } else {
                short_name(&name)
            }
        })
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for b in &base {
        *count.entry(b).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    base.iter()
        .map(|b| {
            if count[b.as_str()] > 1 {
                let k = seen.entry(b).or_default();
                *k += 1;
                format!("{b}[{}]", *k - 1)
            } else {
                b.clone()
            }
        })
        .collect()
}

/// The short name of a system, from bevy's full name: its path below
/// `neurograph::sim::systems` without closure segments (`forward::emit`,
/// `radiation::radiate_part`), or bevy's short name for other systems. The label timing reports
/// use, too.
pub(crate) fn short_name(name: &DebugName) -> String {
    match name.strip_prefix(SYSTEMS_PREFIX) {
        Some(rest) => rest.replace("::{{closure}}", ""),
        None => name.shortname().to_string(),
    }
}

/// Every system of an initialised schedule with the [`Stage`] sets that hold it (directly or
/// through nested sets), in executable order; auto-inserted sync points are left out. Empty
/// for a schedule that was never initialised.
pub(crate) fn system_stages(schedule: &Schedule) -> Vec<(DebugName, Vec<Stage>)> {
    let graph = schedule.graph();
    let entries: Vec<(SystemKey, &SystemWithAccess)> = schedule
        .systems_with_access()
        .map(|it| it.collect())
        .unwrap_or_default();
    let index: HashMap<SystemKey, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let mut stages = vec![Vec::new(); entries.len()];
    for stage in Stage::ALL {
        if let Some(key) = graph.system_sets.get_key(stage.intern()) {
            for i in member_systems(graph, NodeId::Set(key), &index) {
                stages[i].push(stage);
            }
        }
    }
    entries
        .iter()
        .zip(stages)
        .filter(|((_, s), _)| s.system_type() != TypeId::of::<ApplyDeferred>())
        .map(|((_, s), stages)| (s.name(), stages))
        .collect()
}

/// A system name without its `[k]` instance suffix.
fn base_name(name: &str) -> &str {
    match name.rfind('[') {
        Some(i) if name.ends_with(']') => &name[..i],
        _ => name,
    }
}

/// The name of a named set: `Stage::X` for the pipeline stages, otherwise its `Debug` form.
fn describe_set(graph: &ScheduleGraph, key: SystemSetKey) -> Option<String> {
    let set = graph.system_sets.get(key)?;
    for stage in Stage::ALL {
        if graph.system_sets.get_key(stage.intern()) == Some(key) {
            return Some(format!("Stage::{stage:?}"));
        }
    }
    // (Anonymous sets are named by the caller, from their members: bevy's own naming reads
    // the systems, which an initialised schedule has moved out of its graph.)
    Some(format!("{set:?}"))
}

/// Executable positions of the systems a node stands for: itself, or a set's members through
/// nested sets.
fn member_systems(
    graph: &ScheduleGraph,
    node: NodeId,
    index: &HashMap<SystemKey, usize>,
) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut stack = vec![node];
    let mut visited = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if !visited.insert(n) {
            continue;
        }
        match n {
            NodeId::System(k) => {
                if let Some(&i) = index.get(&k) {
                    out.insert(i);
                }
            }
            NodeId::Set(_) => stack.extend(
                graph
                    .hierarchy()
                    .graph()
                    .neighbors_directed(n, Direction::Outgoing),
            ),
        }
    }
    out
}

/// Why the dependency edge `u -> v` exists.
fn edge_kind(graph: &ScheduleGraph, u: NodeId, v: NodeId) -> EdgeKind {
    let named_set = |n: NodeId| match n {
        NodeId::Set(k) => graph
            .system_sets
            .get(k)
            .is_some_and(|s| s.system_type().is_none()),
        NodeId::System(_) => false,
    };
    if u.is_system() && v.is_system() {
        EdgeKind::Chain
    } else if named_set(u) || named_set(v) {
        EdgeKind::SetOrder
    } else {
        EdgeKind::Explicit
    }
}

/// `reach[a][b]`: a path leads from system `a` to system `b`.
fn reachability(successors: &[Vec<usize>]) -> Vec<Vec<bool>> {
    let n = successors.len();
    let mut reach = vec![vec![false; n]; n];
    for (start, row) in reach.iter_mut().enumerate() {
        let mut stack = successors[start].clone();
        while let Some(x) = stack.pop() {
            if !row[x] {
                row[x] = true;
                stack.extend(&successors[x]);
            }
        }
    }
    reach
}

/// A shortest path of systems from `from` to `to`, both included.
fn find_path(successors: &[Vec<usize>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut prev = vec![usize::MAX; successors.len()];
    let mut queue = VecDeque::from([from]);
    prev[from] = from;
    while let Some(x) = queue.pop_front() {
        if x == to {
            let mut path = vec![to];
            let mut y = to;
            while y != from {
                y = prev[y];
                path.push(y);
            }
            path.reverse();
            return Some(path);
        }
        for &s in &successors[x] {
            if prev[s] == usize::MAX {
                prev[s] = x;
                queue.push_back(s);
            }
        }
    }
    None
}

/// `"{head} ({reasons})"` for a path: a chain (inside the innermost named set holding the
/// whole path), set orders, explicit `before`/`after` orders.
fn explain(
    head: &str,
    path: &[usize],
    edges: &HashMap<(usize, usize), (EdgeKind, NodeId, NodeId)>,
    graph: &ScheduleGraph,
    set_name: &dyn Fn(SystemSetKey) -> Option<String>,
    node_name: &dyn Fn(NodeId) -> String,
) -> String {
    let mut reasons: Vec<String> = Vec::new();
    let mut push = |r: String| {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    };
    for w in path.windows(2) {
        let (kind, u, v) = edges[&(w[0], w[1])];
        match kind {
            EdgeKind::Chain => {
                let common = common_named_set(graph, u, v)
                    .and_then(set_name)
                    .map_or_else(|| "chain".to_string(), |s| format!("chain in {s}"));
                push(common);
            }
            EdgeKind::SetOrder => {
                push(format!(
                    "via set order {} -> {}",
                    node_name(u),
                    node_name(v)
                ));
            }
            EdgeKind::Explicit => push(format!(
                "via explicit order {} -> {}",
                node_name(u),
                node_name(v)
            )),
        }
    }
    format!("{head} ({})", reasons.join("; "))
}

/// The innermost named set that holds both systems `u` and `v` directly or through nesting.
fn common_named_set(graph: &ScheduleGraph, u: NodeId, v: NodeId) -> Option<SystemSetKey> {
    let ancestors = |n: NodeId| -> Vec<SystemSetKey> {
        // Breadth-first upwards, so nearer sets come first.
        let mut out = Vec::new();
        let mut queue = VecDeque::from([n]);
        while let Some(x) = queue.pop_front() {
            for p in graph
                .hierarchy()
                .graph()
                .neighbors_directed(x, Direction::Incoming)
            {
                if let NodeId::Set(k) = p
                    && !out.contains(&k)
                {
                    out.push(k);
                    queue.push_back(p);
                }
            }
        }
        out
    };
    let of_v = ancestors(v);
    ancestors(u).into_iter().find(|k| {
        of_v.contains(k)
            && graph
                .system_sets
                .get(*k)
                .is_some_and(|s| s.system_type().is_none() && !s.is_anonymous())
    })
}

/// A component's or resource's short name.
fn component_name(world: &World, id: ComponentId) -> String {
    match world.components().get_name(id) {
        Some(name) if !name.contains(NAME_DISABLED) => name.shortname().to_string(),
        _ => format!("component#{}", id.index()),
    }
}

/// Sorted names of what an access reads only and what it writes.
fn access_names(
    access: &SystemAccess,
    name: &dyn Fn(ComponentId) -> String,
) -> (Vec<String>, Vec<String>) {
    match access {
        SystemAccess::None => (Vec::new(), Vec::new()),
        SystemAccess::Exclusive => (Vec::new(), vec!["World".to_string()]),
        SystemAccess::Shared(set) => {
            let combined: &Access = set.combined_access();
            let writes = set_names(combined.writes(), name);
            let reads = match (combined.reads(), combined.writes()) {
                (InvertibleComponentIdSet::Included(r), InvertibleComponentIdSet::Included(w)) => {
                    let mut v: Vec<String> = r.difference(w).map(name).collect();
                    v.sort();
                    v
                }
                (r, _) => set_names(r, name),
            };
            (reads, writes)
        }
    }
}

/// Sorted names of a set of components, or `all`/`all except ...` for an unbounded one.
fn set_names(set: &InvertibleComponentIdSet, name: &dyn Fn(ComponentId) -> String) -> Vec<String> {
    match set {
        InvertibleComponentIdSet::Included(s) => {
            let mut v: Vec<String> = s.iter().map(name).collect();
            v.sort();
            v
        }
        InvertibleComponentIdSet::Excluded(s) if s.is_clear() => vec!["all".to_string()],
        InvertibleComponentIdSet::Excluded(s) => {
            let mut v: Vec<String> = s.iter().map(name).collect();
            v.sort();
            vec![format!("all except {}", v.join(", "))]
        }
    }
}

/// What two accesses conflict on (`World` for a whole-world conflict), or `None` when they
/// can run together. Components bevy was told to ignore are left out.
fn conflict_names(
    a: &SystemAccess,
    b: &SystemAccess,
    ignored: &BTreeSet<ComponentId>,
    name: &dyn Fn(ComponentId) -> String,
) -> Option<Vec<String>> {
    if a.is_compatible(b) {
        return None;
    }
    if a.is_exclusive() || b.is_exclusive() {
        return Some(vec!["World".to_string()]);
    }
    match a.get_conflicts(b) {
        AccessConflicts::All => Some(vec!["World".to_string()]),
        AccessConflicts::Individual(ids) => {
            let mut v: Vec<String> = ids
                .iter()
                .filter(|id| !ignored.contains(id))
                .map(name)
                .collect();
            v.sort();
            (!v.is_empty()).then_some(v)
        }
    }
}

/// `-` for an empty list, otherwise the items joined with `, `.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

mod render;
pub use render::to_dot;
