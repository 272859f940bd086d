//! Pictures of a traced sample: the activity raster (`raster-<sample>.svg`: nodes by layer ×
//! record, σ as colour, τ below) and the network at one timestep (`network-<sample>.svg`:
//! nodes by layer, active ones coloured by σ, that timestep's radiation arrivals as edges).

use std::fmt::Write as _;

use glam::Vec2;

use super::plot::{svg_open, xml_escape};
use super::trace_out::Traced;

/// A colour for `f` in 0..=1, from pale yellow through orange and red to dark purple.
fn heat(f: f32) -> String {
    const STOPS: [(f32, [f32; 3]); 4] = [
        (0.0, [255.0, 237.0, 160.0]),
        (0.35, [253.0, 141.0, 60.0]),
        (0.7, [189.0, 0.0, 38.0]),
        (1.0, [63.0, 0.0, 75.0]),
    ];
    let f = f.clamp(0.0, 1.0);
    let i = STOPS
        .iter()
        .rposition(|(at, _)| *at <= f)
        .unwrap_or(0)
        .min(2);
    let ((a, ca), (b, cb)) = (STOPS[i], STOPS[i + 1]);
    let w = (f - a) / (b - a);
    let c: Vec<u8> = (0..3)
        .map(|k| (ca[k] + (cb[k] - ca[k]) * w).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The layer bands of the node axis: (first node, nodes, name).
fn bands(
    nodes: usize,
    inputs: usize,
    first_output: usize,
    layers: &[u32],
) -> Vec<(usize, usize, String)> {
    let mut out = vec![(0, inputs, "inputs".to_string())];
    let mut at = inputs;
    if layers.iter().map(|&l| l as usize).sum::<usize>() == first_output - inputs {
        for (i, &l) in layers.iter().enumerate() {
            out.push((at, l as usize, format!("layer {}", i + 1)));
            at += l as usize;
        }
    } else if first_output > inputs {
        out.push((inputs, first_output - inputs, "hidden".into()));
    }
    out.push((first_output, nodes - first_output, "outputs".into()));
    out
}

/// The raster of one traced sample.
pub fn render(tr: &Traced, first_output: usize, layers: &[u32]) -> String {
    let steps = &tr.trace.steps;
    let nodes = steps.first().map_or(0, |s| s.active.len());
    let inputs = steps
        .first()
        .map_or(0, |s| s.active.iter().take_while(|&&a| a).count());
    let (left, top, width, height) = (110.0f32, 60.0f32, 560.0f32, 420.0f32);
    let tau_top = top + height + 40.0;
    let tau_height = 90.0f32;
    let total_w = left + width + 120.0;
    let total_h = tau_top + tau_height + 50.0;
    let mut s = String::new();
    let title = format!(
        "sample {} (label {}, predicted {}): activity by record",
        tr.index,
        tr.label,
        tr.trace
            .outcome
            .prediction
            .map_or("none".to_string(), |p| p.to_string())
    );
    svg_open(
        &mut s,
        f64::from(total_w),
        f64::from(total_h),
        11,
        24.0,
        &title,
    );
    let max_sigma = steps
        .iter()
        .flat_map(|st| st.strength.iter().copied())
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let cw = width / steps.len().max(1) as f32;
    let rh = height / nodes.max(1) as f32;
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#f7f7f7" stroke="#999999"/>"##
    );
    let _ = writeln!(s, r#"<g class="cells">"#);
    for (j, st) in steps.iter().enumerate() {
        for (k, &a) in st.active.iter().enumerate() {
            if a {
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.3}" fill="{}"/>"#,
                    left + cw * j as f32,
                    top + rh * k as f32,
                    cw,
                    rh.max(0.3),
                    heat(st.strength[k] / max_sigma)
                );
            }
        }
    }
    let _ = writeln!(s, "</g>");
    for (start, count, name) in bands(nodes, inputs, first_output, layers) {
        let y = top + rh * start as f32;
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333333" stroke-width="0.6"/>"##,
            left - 6.0,
            left + width
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} ({count})</text>"#,
            left - 8.0,
            y + rh * count as f32 / 2.0 + 4.0,
            xml_escape(&name)
        );
    }
    for (j, st) in steps.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + cw * (j as f32 + 0.5),
            top + height + 16.0,
            st.t
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">timesteps run (0: after injection)</text>"#,
        left + width / 2.0,
        top + height + 32.0
    );
    // Colour scale.
    for i in 0..=20 {
        let f = i as f32 / 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="14" height="{:.2}" fill="{}"/>"#,
            left + width + 20.0,
            top + height * (1.0 - f) - height / 21.0,
            height / 21.0 + 0.5,
            heat(f)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">σ {max_sigma:.2}</text><text x="{:.1}" y="{:.1}">σ 0</text>"#,
        left + width + 38.0,
        top + 10.0,
        left + width + 38.0,
        top + height
    );
    // τ per record.
    let taus: Vec<f32> = steps.iter().map(|st| st.tau).collect();
    let (lo, hi) = taus
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let points: Vec<String> = taus
        .iter()
        .enumerate()
        .map(|(j, &t)| {
            let p = Vec2::new(
                left + cw * (j as f32 + 0.5),
                tau_top + tau_height * (1.0 - (t - lo) / (hi - lo)),
            );
            format!("{:.1},{:.1}", p.x, p.y)
        })
        .collect();
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{tau_top}" width="{width}" height="{tau_height}" fill="none" stroke="#999999"/>"##
    );
    let _ = writeln!(
        s,
        r##"<polyline class="tau" points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        points.join(" ")
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">τ {hi:.3}</text><text x="{:.1}" y="{:.1}" text-anchor="end">τ {lo:.3}</text>"#,
        left - 8.0,
        tau_top + 10.0,
        left - 8.0,
        tau_top + tau_height
    );
    s.push_str("</svg>\n");
    s
}

/// The network of one traced sample at record `j`: inputs, hidden layers and outputs as
/// columns; nodes active at that record filled by σ; that record's radiation arrivals as
/// edges (kept dark, filtered light red) between the node circles.
pub fn render_network(tr: &Traced, j: usize, first_output: usize, layers: &[u32]) -> String {
    let steps = &tr.trace.steps;
    let Some(st) = steps.get(j) else {
        return String::new();
    };
    let nodes = st.active.len();
    let inputs = steps[0].active.iter().take_while(|&&a| a).count();
    let columns = bands(nodes, inputs, first_output, layers);
    let (w, h) = (900.0f32, 560.0f32);
    let (top, bottom) = (70.0f32, h - 40.0);
    let mut position = vec![Vec2::ZERO; nodes];
    for (c, (start, count, _)) in columns.iter().enumerate() {
        let x = 80.0 + (w - 160.0) * c as f32 / (columns.len() - 1).max(1) as f32;
        for i in 0..*count {
            let y = top + (bottom - top) * (i as f32 + 0.5) / *count as f32;
            position[start + i] = Vec2::new(x, y);
        }
    }
    let radius = ((bottom - top) / nodes.max(1) as f32 * 2.0).clamp(1.2, 6.0);
    let mut s = String::new();
    let title = format!(
        "sample {}: arrivals of the record after {} timesteps ({} active nodes)",
        tr.index,
        st.t,
        st.active.iter().filter(|&&a| a).count()
    );
    svg_open(&mut s, f64::from(w), f64::from(h), 11, 24.0, &title);
    let _ = writeln!(
        s,
        r#"<g class="edges" stroke-width="0.4" stroke-opacity="0.5">"#
    );
    // Radiation edges when the record has any, else every arrival (a settled pass has only
    // static ones).
    let radiation_only = st.arrivals.iter().any(|a| a.radiation);
    for a in st
        .arrivals
        .iter()
        .filter(|a| a.radiation || !radiation_only)
    {
        let (p, q) = (position[a.source as usize], position[a.target as usize]);
        let d = (q - p).normalize_or_zero() * radius;
        let (p, q) = (p + d, q - d);
        let color = if a.kept { "#3b3b3b" } else { "#f4a3a3" };
        let _ = writeln!(
            s,
            r#"<line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="{color}"/>"#,
            p.x, p.y, q.x, q.y
        );
    }
    let _ = writeln!(s, "</g>");
    let max_sigma = st
        .strength
        .iter()
        .copied()
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let _ = writeln!(s, r#"<g class="nodes">"#);
    for (k, p) in position.iter().enumerate() {
        let fill = if st.active[k] {
            heat(st.strength[k] / max_sigma)
        } else {
            "#ffffff".to_string()
        };
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="{radius:.1}" fill="{fill}" stroke="#888888" stroke-width="0.4"/>"##,
            p.x, p.y
        );
    }
    let _ = writeln!(s, "</g>");
    for (c, (_, count, name)) in columns.iter().enumerate() {
        let x = 80.0 + (w - 160.0) * c as f32 / (columns.len() - 1).max(1) as f32;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{} ({count})</text>"#,
            top - 14.0,
            xml_escape(name)
        );
    }
    let shown = |a: &&crate::sim::trace::TraceArrival| a.radiation || !radiation_only;
    let kept = st.arrivals.iter().filter(shown).filter(|a| a.kept).count();
    let dropped = st.arrivals.iter().filter(shown).filter(|a| !a.kept).count();
    let what = if radiation_only {
        "radiation arrivals"
    } else {
        "arrivals"
    };
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{kept} {what} kept (dark), {dropped} filtered (light red); node colour: σ (pale: low, dark: high), white: inactive</text>"##,
        w / 2.0,
        h - 14.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plot::svg_check::assert_well_formed;
    use crate::sim::trace::{Trace, TraceArrival, TraceStep};

    /// Six nodes (2 inputs, 2 hidden, 2 outputs), two records.
    fn traced() -> Traced {
        let step = |t: u32, active: [bool; 6], tau: f32, arrivals: Vec<TraceArrival>| TraceStep {
            t,
            tau,
            active: active.to_vec(),
            phase: vec![1; 6],
            magnitude: vec![2; 6],
            strength: active.iter().map(|&a| if a { 2.0 } else { 0.0 }).collect(),
            sources: Vec::new(),
            radiation_targets: Vec::new(),
            output_signals: vec![0.0; 2],
            arrivals,
        };
        let arrival = |source, target, kept| TraceArrival {
            source,
            target,
            radiation: true,
            strength: 1.0,
            kept,
        };
        Trace {
            dim: 1,
            top_k: 1,
            settled: false,
            steps: vec![
                step(0, [true, true, false, false, false, false], 1.0, Vec::new()),
                step(
                    1,
                    [false, true, true, true, false, true],
                    0.9,
                    vec![arrival(0, 2, true), arrival(1, 3, false)],
                ),
            ],
            outcome: crate::sim::SampleOutcome {
                prediction: Some(0),
                label: 1,
                loss: Some(1.0),
                timesteps: 1,
                mean_active: 4.0,
                active_outputs: 1,
                parameters_changed: 0,
                logits: vec![0.5, -0.5],
            },
        }
        .into_traced()
    }

    impl Trace {
        fn into_traced(self) -> Traced {
            Traced {
                index: 3,
                label: 1,
                trace: self,
            }
        }
    }

    #[test]
    fn the_raster_has_a_cell_per_active_node_and_record() {
        let svg = render(&traced(), 4, &[2]);
        assert_well_formed(&svg);
        let cells = svg.split(r#"<g class="cells">"#).nth(1).unwrap();
        let cells = &cells[..cells.find("</g>").unwrap()];
        assert_eq!(cells.matches("<rect").count(), 2 + 4);
        assert!(svg.contains("layer 1 (2)") && svg.contains("outputs (2)"));
        assert!(svg.contains(r#"class="tau""#) && svg.contains("τ 1.000"));
    }

    #[test]
    fn the_network_draws_its_records_radiation_arrivals() {
        let svg = render_network(&traced(), 1, 4, &[2]);
        assert_well_formed(&svg);
        let edges = svg.split(r#"<g class="edges""#).nth(1).unwrap();
        let edges = &edges[..edges.find("</g>").unwrap()];
        assert_eq!(edges.matches("<line").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("1 radiation arrivals kept (dark), 1 filtered"));
        // An inactive node is white.
        assert_eq!(
            svg.matches(r##"fill="#ffffff" stroke="#888888""##).count(),
            2
        );
    }
}
