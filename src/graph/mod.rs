//! The static graph: a seeded layered DAG or a validated edge list, stored as CSR adjacency in
//! both directions, with the hop statistics that set `min_timesteps` (SPEC 3).
//!
//! Edges point source -> target (data flow). This module knows nothing of the ECS.

use std::fmt;
use std::path::Path;

use rand_chacha::ChaCha8Rng;

use crate::model::rng;

/// Node counts and roles: inputs are `0..inputs`, outputs the last `outputs` indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// All nodes.
    pub total: u32,
    /// Input nodes.
    pub inputs: u32,
    /// Output nodes.
    pub outputs: u32,
}

impl Roles {
    /// Number of hidden nodes.
    pub fn hidden(&self) -> u32 {
        self.total - self.inputs - self.outputs
    }
    /// First output index.
    pub fn first_output(&self) -> u32 {
        self.total - self.outputs
    }
    /// Whether node `k` is an output.
    pub fn is_output(&self, k: u32) -> bool {
        k >= self.first_output()
    }
    /// Whether node `k` is a hidden node.
    pub fn is_hidden(&self, k: u32) -> bool {
        k >= self.inputs && k < self.first_output()
    }
}

/// Compressed sparse rows: the neighbours of node `k` are `items[offsets[k]..offsets[k+1]]`,
/// sorted ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Csr {
    /// Row offsets, `n + 1` entries.
    pub offsets: Vec<u32>,
    /// Neighbour indices.
    pub items: Vec<u32>,
}

impl Csr {
    /// Neighbours of node `k`.
    #[inline]
    pub fn row(&self, k: usize) -> &[u32] {
        &self.items[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }

    fn from_rows(rows: &[Vec<u32>]) -> Csr {
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut items = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        offsets.push(0);
        for row in rows {
            let start = items.len();
            items.extend_from_slice(row);
            items[start..].sort_unstable();
            offsets.push(items.len() as u32);
        }
        Csr { offsets, items }
    }

    /// The transpose of `rows` (an edge `k -> v` for each `v` in row `k` becomes `v -> k`),
    /// by counting: rows are filled in ascending `k`, so each comes out sorted.
    fn transpose(rows: &[Vec<u32>]) -> Csr {
        let mut offsets = vec![0u32; rows.len() + 1];
        for &v in rows.iter().flatten() {
            offsets[v as usize + 1] += 1;
        }
        for k in 0..rows.len() {
            offsets[k + 1] += offsets[k];
        }
        let mut next = offsets.clone();
        let mut items = vec![0u32; offsets[rows.len()] as usize];
        for (k, row) in rows.iter().enumerate() {
            for &v in row {
                items[next[v as usize] as usize] = k as u32;
                next[v as usize] += 1;
            }
        }
        Csr { offsets, items }
    }
}

/// The static graph with adjacency in both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// Node roles.
    pub roles: Roles,
    /// Successors (data flow targets) of each node.
    pub successors: Csr,
    /// Predecessors (sources) of each node.
    pub predecessors: Csr,
    /// Sizes of the hidden layers, in index order (empty for edge lists).
    pub layer_sizes: Vec<u32>,
}

/// Statistics computed when the graph is built.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GraphStats {
    /// Nodes.
    pub nodes: u32,
    /// Static edges.
    pub edges: u64,
    /// Hidden layer sizes (layered graphs only).
    pub layer_sizes: Vec<u32>,
    /// Inputs from which some output can be reached along successors.
    pub inputs_reaching_output: u32,
    /// Outputs some input reaches along successors (the others can never activate).
    #[serde(default)]
    pub outputs_reached: u32,
    /// Mean BFS hops from an input to its nearest output, over inputs that reach one.
    pub avg_hops: Option<f64>,
    /// max(floor(avg_hops) + 2, 5); 5 when no input reaches an output.
    pub derived_min_timesteps: u32,
}

/// An edge-list file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The file could not be read.
    #[error("cannot read edge list {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed or names an invalid node.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The edges form a cycle.
    #[error("{path}: the edges form a cycle through node {node}; the graph must be acyclic")]
    Cycle {
        /// The file.
        path: String,
        /// A node on the cycle.
        node: u32,
    },
}

impl Graph {
    /// Builds the layered DAG of SPEC 3 from the `graph` RNG stream, in time linear in the
    /// nodes and edges.
    pub fn layered(roles: Roles, cardinality: u32, layers: u32, rng: &mut ChaCha8Rng) -> Graph {
        Graph::layered_with(roles, cardinality, layers, rng, rng::choose_distinct)
    }

    /// [`Graph::layered`] with the predecessor chooser given, so a test can build the same graph
    /// with the reference chooser.
    fn layered_with(
        roles: Roles,
        cardinality: u32,
        layers: u32,
        rng: &mut ChaCha8Rng,
        choose: impl Fn(&mut ChaCha8Rng, &[u32], usize, &mut Vec<u32>),
    ) -> Graph {
        let n = roles.total as usize;
        let hidden = roles.hidden();
        let layer_size = (hidden / layers.max(1)).max(1);
        let mut layer_sizes = Vec::new();
        let mut left = hidden;
        while left > 0 {
            let size = layer_size.min(left);
            layer_sizes.push(size);
            left -= size;
        }
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        // Candidates grow layer by layer: all inputs, then each finished hidden layer.
        let mut candidates: Vec<u32> = (0..roles.inputs).collect();
        let mut next = roles.inputs;
        let mut chosen = Vec::new();
        for &size in &layer_sizes {
            for k in next..next + size {
                choose(rng, &candidates, cardinality as usize, &mut chosen);
                preds[k as usize] = chosen.clone();
            }
            candidates.extend(next..next + size);
            next += size;
        }
        for k in roles.first_output()..roles.total {
            choose(rng, &candidates, cardinality as usize, &mut chosen);
            preds[k as usize] = chosen.clone();
        }
        Graph::from_predecessors(roles, &preds, layer_sizes)
    }

    /// Loads an edge list: one `target source source ...` line per node (blank lines and
    /// `#` comments allowed), validated for range, self loops, duplicates and cycles.
    pub fn from_edge_list(roles: Roles, path: &Path) -> Result<Graph, GraphError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GraphError::Io {
            path: shown.clone(),
            source,
        })?;
        Graph::parse_edge_list(roles, &text, &shown)
    }

    /// Parses edge-list text; `origin` names it in errors.
    pub fn parse_edge_list(roles: Roles, text: &str, origin: &str) -> Result<Graph, GraphError> {
        let n = roles.total;
        let line_error = |line: usize, message: String| GraphError::Line {
            path: origin.to_string(),
            line,
            message,
        };
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
        let mut seen_target = vec![false; n as usize];
        // `listed_on[s] == line` once source s appeared on that line: a duplicate check in O(1),
        // so a line with many sources costs linear time, not quadratic.
        let mut listed_on = vec![0usize; n as usize];
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut ids = Vec::new();
            for token in content.split_whitespace() {
                let id: u32 = token
                    .parse()
                    .map_err(|_| line_error(line_no, format!("`{token}` is not a node index")))?;
                if id >= n {
                    return Err(line_error(
                        line_no,
                        format!(
                            "node {id} is out of range: indices must be between 0 and {}",
                            n - 1
                        ),
                    ));
                }
                ids.push(id);
            }
            let target = ids[0];
            if std::mem::replace(&mut seen_target[target as usize], true) {
                return Err(line_error(
                    line_no,
                    format!("node {target} has a second line; give each target one line"),
                ));
            }
            let sources = &ids[1..];
            for &s in sources {
                if s == target {
                    return Err(line_error(line_no, format!("self loop on node {target}")));
                }
                if std::mem::replace(&mut listed_on[s as usize], line_no) == line_no {
                    return Err(line_error(
                        line_no,
                        format!("source {s} is listed twice for target {target}"),
                    ));
                }
            }
            preds[target as usize] = sources.to_vec();
        }
        let graph = Graph::from_predecessors(roles, &preds, Vec::new());
        if let Some(node) = graph.find_cycle() {
            return Err(GraphError::Cycle {
                path: origin.to_string(),
                node,
            });
        }
        Ok(graph)
    }

    fn from_predecessors(roles: Roles, preds: &[Vec<u32>], layer_sizes: Vec<u32>) -> Graph {
        Graph {
            roles,
            successors: Csr::transpose(preds),
            predecessors: Csr::from_rows(preds),
            layer_sizes,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.roles.total as usize
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.roles.total == 0
    }

    /// Number of static edges.
    pub fn edge_count(&self) -> u64 {
        self.successors.items.len() as u64
    }

    /// A node on a cycle, if the graph has one (Kahn's algorithm).
    fn find_cycle(&self) -> Option<u32> {
        let n = self.len();
        let mut indegree: Vec<u32> = (0..n)
            .map(|k| self.predecessors.row(k).len() as u32)
            .collect();
        let mut queue: Vec<u32> = (0..n as u32)
            .filter(|&k| indegree[k as usize] == 0)
            .collect();
        let mut done = 0;
        while let Some(u) = queue.pop() {
            done += 1;
            for &v in self.successors.row(u as usize) {
                indegree[v as usize] -= 1;
                if indegree[v as usize] == 0 {
                    queue.push(v);
                }
            }
        }
        (done < n).then(|| {
            (0..n as u32)
                .find(|&k| indegree[k as usize] > 0)
                .unwrap_or(0)
        })
    }

    /// For every node, BFS hops along successors to the nearest output (`None` if none is
    /// reachable); computed as one multi-source BFS backwards from the outputs.
    pub fn hops_to_output(&self) -> Vec<Option<u32>> {
        let mut dist = vec![None; self.len()];
        let mut frontier: Vec<u32> = (self.roles.first_output()..self.roles.total).collect();
        for &k in &frontier {
            dist[k as usize] = Some(0);
        }
        let mut hops = 0;
        while !frontier.is_empty() {
            hops += 1;
            let mut next = Vec::new();
            for &v in &frontier {
                for &u in self.predecessors.row(v as usize) {
                    if dist[u as usize].is_none() {
                        dist[u as usize] = Some(hops);
                        next.push(u);
                    }
                }
            }
            frontier = next;
        }
        dist
    }

    /// How many outputs some input reaches along successors: one BFS forwards from all
    /// inputs, O(edges).
    pub fn outputs_reached(&self) -> u32 {
        let mut seen = vec![false; self.len()];
        let mut frontier: Vec<u32> = (0..self.roles.inputs).collect();
        for &k in &frontier {
            seen[k as usize] = true;
        }
        while let Some(u) = frontier.pop() {
            for &v in self.successors.row(u as usize) {
                if !seen[v as usize] {
                    seen[v as usize] = true;
                    frontier.push(v);
                }
            }
        }
        (self.roles.first_output()..self.roles.total)
            .filter(|&k| seen[k as usize])
            .count() as u32
    }

    /// The statistics of SPEC 3.
    pub fn stats(&self) -> GraphStats {
        let hops = self.hops_to_output();
        let reaching: Vec<u32> = (0..self.roles.inputs as usize)
            .filter_map(|k| hops[k])
            .collect();
        let avg_hops = (!reaching.is_empty())
            .then(|| reaching.iter().map(|&h| h as f64).sum::<f64>() / reaching.len() as f64);
        let derived_min_timesteps = avg_hops.map_or(5, |h| (h.floor() as u32 + 2).max(5));
        GraphStats {
            nodes: self.roles.total,
            edges: self.edge_count(),
            layer_sizes: self.layer_sizes.clone(),
            inputs_reaching_output: reaching.len() as u32,
            outputs_reached: self.outputs_reached(),
            avg_hops,
            derived_min_timesteps,
        }
    }
}

impl fmt::Display for GraphStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nodes            {}", self.nodes)?;
        writeln!(f, "static edges     {}", self.edges)?;
        if !self.layer_sizes.is_empty() {
            writeln!(f, "hidden layers    {:?}", self.layer_sizes)?;
        }
        writeln!(
            f,
            "inputs reaching an output  {}",
            self.inputs_reaching_output
        )?;
        writeln!(f, "outputs some input reaches {}", self.outputs_reached)?;
        match self.avg_hops {
            Some(h) => writeln!(f, "avg hops to output         {h:.3}")?,
            None => writeln!(f, "avg hops to output         (no input reaches an output)")?,
        }
        write!(
            f,
            "derived min_timesteps      {}",
            self.derived_min_timesteps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(total: u32, inputs: u32, outputs: u32) -> Roles {
        Roles {
            total,
            inputs,
            outputs,
        }
    }

    #[test]
    fn layered_respects_layers_and_cardinality() {
        let r = roles(100, 20, 10);
        let g = Graph::layered(r, 6, 4, &mut rng::stream(3, rng::Stream::Graph));
        // 70 hidden nodes in layers of 17: 17, 17, 17, 17, 2.
        assert_eq!(g.layer_sizes, vec![17, 17, 17, 17, 2]);
        let mut layer_of = vec![usize::MAX; 100];
        let mut start = 20;
        for (l, &size) in g.layer_sizes.iter().enumerate() {
            for k in start..start + size {
                layer_of[k as usize] = l;
            }
            start += size;
        }
        for k in 0..20 {
            assert!(g.predecessors.row(k).is_empty(), "inputs have no sources");
        }
        for k in 20..100usize {
            let preds = g.predecessors.row(k);
            assert_eq!(preds.len(), 6, "node {k} in-degree");
            for &p in preds {
                assert!(!r.is_output(p), "outputs are never sources");
                if k < 90 && p >= 20 {
                    assert!(layer_of[p as usize] < layer_of[k], "layer order {p} -> {k}");
                }
            }
        }
        assert!(g.find_cycle().is_none());
        // Successor lists are the transpose.
        let mut count = 0;
        for u in 0..100 {
            for &v in g.successors.row(u) {
                assert!(g.predecessors.row(v as usize).contains(&(u as u32)));
                count += 1;
            }
        }
        assert_eq!(count, 80 * 6);
    }

    #[test]
    fn layered_is_deterministic_per_seed() {
        let r = roles(200, 40, 10);
        let a = Graph::layered(r, 6, 4, &mut rng::stream(1, rng::Stream::Graph));
        let b = Graph::layered(r, 6, 4, &mut rng::stream(1, rng::Stream::Graph));
        let c = Graph::layered(r, 6, 4, &mut rng::stream(2, rng::Stream::Graph));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// Issue 12 item 11: the layered builder was quadratic in the nodes. The O(k) chooser must
    /// give the graph the copying chooser gave, for every seed: results of earlier runs depend
    /// on it.
    #[test]
    fn layered_graph_is_unchanged_by_the_linear_chooser() {
        let shapes = [
            (roles(4, 2, 1), 6, 1),
            (roles(100, 20, 10), 6, 4),
            (roles(700, 100, 200), 6, 4),
            (roles(3_000, 300, 50), 12, 7),
            (roles(5_000, 784, 10), 64, 3),
            (roles(20_000, 784, 100), 6, 4),
        ];
        for (r, cardinality, layers) in shapes {
            for seed in [0, 7, 12_345] {
                let mut fast_rng = rng::stream(seed, rng::Stream::Graph);
                let mut ref_rng = fast_rng.clone();
                let fast = Graph::layered(r, cardinality, layers, &mut fast_rng);
                let reference = Graph::layered_with(
                    r,
                    cardinality,
                    layers,
                    &mut ref_rng,
                    rng::reference::choose_distinct_by_copy,
                );
                assert_eq!(fast, reference, "{r:?}, seed {seed}");
                assert!(fast_rng == ref_rng, "{r:?}, seed {seed}: streams differ");
            }
        }
    }

    #[test]
    fn successors_are_the_sorted_transpose() {
        let mut r = rng::stream(9, rng::Stream::Order);
        let rows: Vec<Vec<u32>> = (0..300)
            .map(|_| {
                (0..rng::below(&mut r, 9))
                    .map(|_| rng::below(&mut r, 300))
                    .collect()
            })
            .collect();
        let t = Csr::transpose(&rows);
        assert_eq!(t.offsets.len(), 301);
        for v in 0..300u32 {
            // Brute force: every k whose row holds v, once per occurrence, ascending.
            let want: Vec<u32> = (0..300u32)
                .flat_map(|k| {
                    rows[k as usize]
                        .iter()
                        .filter(move |&&x| x == v)
                        .map(move |_| k)
                })
                .collect();
            assert_eq!(t.row(v as usize), want, "row {v}");
        }
    }

    #[test]
    fn few_candidates_takes_all() {
        // 2 inputs, 1 hidden, 1 output, cardinality 6: everyone takes all candidates.
        let g = Graph::layered(
            roles(4, 2, 1),
            6,
            1,
            &mut rng::stream(0, rng::Stream::Graph),
        );
        assert_eq!(g.predecessors.row(2), &[0, 1]);
        assert_eq!(g.predecessors.row(3), &[0, 1, 2]);
    }

    #[test]
    fn hop_stats_by_hand() {
        // 0 -> 2 -> 3 (output), 1 -> 3; input 4? no: 5 nodes, inputs 0,1; hidden 2,3; output 4.
        let text = "2 0\n3 2\n4 3 1\n";
        let g = Graph::parse_edge_list(roles(5, 2, 1), text, "t").unwrap();
        let hops = g.hops_to_output();
        assert_eq!(hops, vec![Some(3), Some(1), Some(2), Some(1), Some(0)]);
        let s = g.stats();
        assert_eq!(s.inputs_reaching_output, 2);
        assert_eq!(s.avg_hops, Some(2.0));
        assert_eq!(s.derived_min_timesteps, 5);
        assert_eq!(s.edges, 4);
    }

    /// An edge-list line with many sources was checked for duplicates against every earlier
    /// source of the line, quadratic in its length.
    #[test]
    fn edge_list_long_line_is_checked_for_duplicates_in_linear_time() {
        let n = 100_002u32;
        let r = roles(n, n - 2, 1);
        let sources: String = (0..n - 2).map(|s| format!(" {s}")).collect();
        let text = format!("{} {}{sources}\n", n - 1, n - 2);
        let g = Graph::parse_edge_list(r, &text, "long.txt").unwrap();
        assert_eq!(g.predecessors.row(n as usize - 1).len(), n as usize - 1);
        // A duplicate at the end, and a source repeated on a later line (not a duplicate).
        let dup = format!("{} {}{sources} 17\n", n - 1, n - 2);
        assert_eq!(
            Graph::parse_edge_list(r, &dup, "long.txt")
                .unwrap_err()
                .to_string(),
            format!("long.txt:1: source 17 is listed twice for target {}", n - 1)
        );
        let later = format!("{} 17 3\n{} {}{sources}\n", n - 2, n - 1, n - 2);
        let g = Graph::parse_edge_list(r, &later, "long.txt").unwrap();
        assert_eq!(g.predecessors.row(n as usize - 2), &[3, 17]);
    }

    #[test]
    fn edge_list_errors_name_the_line() {
        let r = roles(4, 1, 1);
        let err = |t: &str| {
            Graph::parse_edge_list(r, t, "e.txt")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("1 0\n2 9\n"),
            "e.txt:2: node 9 is out of range: indices must be between 0 and 3"
        );
        assert_eq!(err("# c\n\n2 2\n"), "e.txt:3: self loop on node 2");
        assert_eq!(err("2 x\n"), "e.txt:1: `x` is not a node index");
        assert_eq!(
            err("2 0 0\n"),
            "e.txt:1: source 0 is listed twice for target 2"
        );
        assert_eq!(
            err("2 0\n2 1\n"),
            "e.txt:2: node 2 has a second line; give each target one line"
        );
        assert!(err("1 2\n2 1\n").contains("cycle"));
    }
}
