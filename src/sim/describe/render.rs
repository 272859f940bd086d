//! The human and Graphviz renderings of a [`ScheduleDescription`].

use std::fmt;

use super::*;

impl fmt::Display for ScheduleDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule {} ({} executor): {} systems, {} sets, {} conflicting pairs",
            self.label,
            self.executor,
            self.systems.len(),
            self.sets.len(),
            self.conflicts.len()
        )?;
        writeln!(f, "  sets:")?;
        if self.sets.is_empty() {
            writeln!(f, "    (none)")?;
        }
        for set in &self.sets {
            writeln!(f, "    {}  after: {}", set.name, list(&set.after))?;
            writeln!(f, "      systems: {}", list(&set.systems))?;
        }
        writeln!(f, "  systems, in executable order:")?;
        let width = self.systems.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.systems {
            writeln!(
                f,
                "    {:>2}  {:<width$}  in {}",
                s.order,
                s.name,
                list(&s.sets)
            )?;
            writeln!(f, "        after:  {}", list(&s.after))?;
            writeln!(f, "        reads:  {}", list(&s.reads))?;
            writeln!(f, "        writes: {}", list(&s.writes))?;
        }
        writeln!(f, "  conflicting pairs and how each is ordered:")?;
        if self.conflicts.is_empty() {
            writeln!(f, "    (none)")?;
        }
        for c in &self.conflicts {
            writeln!(f, "    a = {}, b = {}", c.a, c.b)?;
            writeln!(f, "        on: {}", list(&c.on))?;
            writeln!(f, "        {}", c.ordering)?;
        }
        Ok(())
    }
}

/// Escapes a string for a double-quoted Graphviz identifier.
fn dot_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz: one cluster per schedule, a subgraph per set, nodes for systems, edges for
/// ordering, dashed red edges for conflicting pairs (labelled with what they conflict on).
///
/// A system in several sets is drawn in the smallest of them (the innermost one).
pub fn to_dot(schedules: &[ScheduleDescription]) -> String {
    let mut out = String::new();
    out.push_str("digraph schedules {\n  rankdir=LR;\n  compound=true;\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"monospace\"];\n");
    for (si, d) in schedules.iter().enumerate() {
        let id = |name: &str| -> String {
            let order = d
                .systems
                .iter()
                .find(|s| s.name == name)
                .map_or(usize::MAX, |s| s.order);
            format!("s{si}_{order}")
        };
        let _ = writeln!(out, "  subgraph cluster_{si} {{");
        let _ = writeln!(
            out,
            "    label={};",
            dot_str(&format!("{} ({})", d.label, d.executor))
        );
        // Each system goes to the smallest set holding it.
        let home = |s: &SystemInfo| -> Option<usize> {
            d.sets
                .iter()
                .enumerate()
                .filter(|(_, set)| set.systems.contains(&s.name))
                .min_by_key(|(i, set)| (set.systems.len(), *i))
                .map(|(i, _)| i)
        };
        let homes: Vec<Option<usize>> = d.systems.iter().map(home).collect();
        for (ki, set) in d.sets.iter().enumerate() {
            let inside: Vec<&SystemInfo> = d
                .systems
                .iter()
                .zip(&homes)
                .filter(|(_, h)| **h == Some(ki))
                .map(|(s, _)| s)
                .collect();
            if inside.is_empty() {
                continue;
            }
            let _ = writeln!(out, "    subgraph cluster_{si}_{ki} {{");
            let _ = writeln!(out, "      label={}; style=dashed;", dot_str(&set.name));
            for s in inside {
                let _ = writeln!(
                    out,
                    "      {} [label={}];",
                    id(&s.name),
                    dot_str(&format!("{}: {}", s.order, s.name))
                );
            }
            out.push_str("    }\n");
        }
        for (s, h) in d.systems.iter().zip(&homes) {
            if h.is_none() {
                let _ = writeln!(
                    out,
                    "    {} [label={}];",
                    id(&s.name),
                    dot_str(&format!("{}: {}", s.order, s.name))
                );
            }
        }
        for s in &d.systems {
            for p in &s.after {
                let _ = writeln!(out, "    {} -> {};", id(p), id(&s.name));
            }
        }
        for c in &d.conflicts {
            let _ = writeln!(
                out,
                "    {} -> {} [style=dashed, color=red, fontcolor=red, dir=none, \
                 constraint=false, label={}];",
                id(&c.a),
                id(&c.b),
                dot_str(&c.on.join(", "))
            );
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
