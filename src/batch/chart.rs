//! The batch comparison chart (`batch-comparison.svg`): one bar per grid point with its
//! spread over seeds.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::run::plot::{svg_open, xml_escape};

use super::summary::*;

const PLOT_TOP: f64 = 60.0;
pub(super) const PLOT_HEIGHT: f64 = 280.0;
pub(super) const PLOT_LEFT: f64 = 70.0;
pub(super) const PLOT_RIGHT_MARGIN: f64 = 30.0;
/// Approximate width of one character of 11 px sans-serif text.
pub(super) const CHAR_WIDTH: f64 = 6.5;
/// Longest label line drawn horizontally before labels are rotated instead.
pub(super) const MAX_FLAT_CHARS: usize = 22;
/// Longest rotated label; longer ones lose their middle to an ellipsis (the bar's tooltip has
/// the full label).
pub(super) const MAX_ROTATED_CHARS: usize = 48;
pub(super) const ROTATION_DEGREES: f64 = 40.0;
pub(super) const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// The lines of a bar's label: the scene, then one `field=value` per grid axis, with each
/// field shown as `short(field)`.
/// Pairs in `skip` are left out.
pub(super) fn label_lines(
    a: &Aggregate,
    short: &dyn Fn(&str) -> String,
    skip: &[&GridValue],
) -> Vec<String> {
    let mut lines = vec![one_line(&a.scene)];
    lines.extend(
        a.grid
            .iter()
            .filter(|p| !skip.contains(p))
            .map(|(f, v)| one_line(&format!("{}={v}", short(f)))),
    );
    lines
}

/// The `(field, value)` pairs shared by every aggregate, when there are at least two.
pub(super) fn common_grid_values(aggs: &[Aggregate]) -> Vec<&GridValue> {
    match aggs {
        [first, rest @ ..] if !rest.is_empty() => first
            .grid
            .iter()
            .filter(|p| rest.iter().all(|a| a.grid.contains(p)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Display names of the grid fields: the last segment of a dotted path when no other field
/// shares it, else the whole path.
pub(super) fn short_field_names(aggs: &[Aggregate]) -> HashMap<String, String> {
    let last = |f: &str| f.rsplit('.').next().unwrap_or(f).to_string();
    let mut fields: Vec<&str> = aggs
        .iter()
        .flat_map(|a| a.grid.iter().map(|(f, _)| f.as_str()))
        .collect();
    fields.sort_unstable();
    fields.dedup();
    fields
        .iter()
        .map(|&f| {
            let shared = fields.iter().any(|&g| g != f && last(g) == last(f));
            let name = if shared { f.to_string() } else { last(f) };
            (f.to_string(), name)
        })
        .collect()
}

/// Cuts `text` to at most `max` characters by replacing its middle with an ellipsis, so both
/// the scene (at the start) and the last grid values (at the end) stay readable.
pub(super) fn truncate_middle(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 3;
    let tail = keep - head;
    let mut t: String = chars[..head].iter().collect();
    t.push('…');
    t.extend(&chars[chars.len() - tail..]);
    t
}

/// A value in `[0, 1]` when finite.
pub(super) fn unit(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite()).map(|v| v.clamp(0.0, 1.0))
}

/// Renders a bar chart comparing the scene × grid points: one `<rect class="bar">` per
/// aggregate with its mean final accuracy on a 0–100% axis (height 0 and a "no result" note
/// when no run finished), ±sd error bars where a standard deviation exists, the value above each
/// bar, and a label under each bar: the scene and grid values (a dotted field path shortened to
/// its last segment when that is unambiguous), one per line when they are short, else rotated
/// on one line and cut in the middle when very long; each bar's tooltip holds the full label. Bars are coloured by
/// scene. `title` and all labels are XML-escaped. The width grows with the number of bars.
pub fn render_comparison_svg(aggs: &[Aggregate], title: &str) -> String {
    // Full labels for the tooltips; labels with short field names under the bars.
    let full: Vec<Vec<String>> = aggs
        .iter()
        .map(|a| label_lines(a, &|f| f.to_string(), &[]))
        .collect();
    let names = short_field_names(aggs);
    let short = |f: &str| names.get(f).cloned().unwrap_or_else(|| f.to_string());
    // Grid values every point shares go in a subtitle instead of under every bar.
    let common = common_grid_values(aggs);
    let labels: Vec<Vec<String>> = aggs
        .iter()
        .map(|a| label_lines(a, &short, &common))
        .collect();
    let longest = labels
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let rotated = longest > MAX_FLAT_CHARS;
    let lines_max = labels.iter().map(Vec::len).max().unwrap_or(1);
    let slot = if rotated {
        44.0
    } else {
        (longest as f64 * CHAR_WIDTH + 12.0).max(52.0)
    };
    let flat_labels: Vec<String> = labels
        .iter()
        .map(|l| truncate_middle(&l.join(" · "), MAX_ROTATED_CHARS))
        .collect();
    let label_height = if rotated {
        let chars = flat_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        chars as f64 * CHAR_WIDTH * ROTATION_DEGREES.to_radians().sin() + 24.0
    } else {
        lines_max as f64 * 14.0 + 12.0
    };
    // Room on the left for the first rotated labels, which reach left of their bars.
    let mut plot_left = PLOT_LEFT;
    if rotated {
        let reach = CHAR_WIDTH * ROTATION_DEGREES.to_radians().cos();
        for (i, label) in flat_labels.iter().enumerate() {
            let needed = label.chars().count() as f64 * reach + 8.0 - slot * (i as f64 + 0.5);
            plot_left = plot_left.max(needed.ceil());
        }
    }
    let plot_bottom = PLOT_TOP + PLOT_HEIGHT;
    let plot_width = slot * aggs.len().max(1) as f64;
    let title_width = title.chars().count() as f64 * 9.0 + 40.0;
    let width = (plot_left + plot_width + PLOT_RIGHT_MARGIN)
        .max(title_width)
        .max(400.0)
        .ceil();
    let height = (plot_bottom + label_height + 10.0).ceil();
    let plot_right = width - PLOT_RIGHT_MARGIN;
    // Centre the bars when the title makes the chart wider than they need.
    let bars_left =
        plot_left + ((plot_right - plot_left) - slot * aggs.len() as f64).max(0.0) / 2.0;
    let py = |v: f64| plot_bottom - v * PLOT_HEIGHT;

    let mut s = String::new();
    svg_open(&mut s, width, height, 11, 28.0, title);
    if !common.is_empty() {
        let text: Vec<String> = common
            .iter()
            .map(|(f, v)| one_line(&format!("{f}={v}")))
            .collect();
        let max_chars = ((width - 40.0) / CHAR_WIDTH) as usize;
        let _ = writeln!(
            s,
            r##"<text class="subtitle" x="{:.1}" y="46" text-anchor="middle" fill="#555555">{}</text>"##,
            width / 2.0,
            xml_escape(&truncate_middle(
                &format!("every point: {}", text.join(", ")),
                max_chars
            ))
        );
    }

    // Axes: horizontal grid lines every 20%, the frame, the y label.
    let _ = writeln!(s, r#"<g class="axes">"#);
    for i in 0..=5 {
        let v = f64::from(i) * 0.2;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{plot_left:.1}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"#,
            plot_left - 6.0,
            y + 4.0,
            v * 100.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline class="frame" points="{plot_left:.1},{PLOT_TOP:.1} {plot_left:.1},{plot_bottom:.1} {plot_right:.1},{plot_bottom:.1}" fill="none" stroke="#333333"/>"##
    );
    let mid = PLOT_TOP + PLOT_HEIGHT / 2.0;
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {mid:.1})">mean final accuracy (± sd over seeds)</text>"#,
        x = plot_left - 48.0
    );
    let _ = writeln!(s, "</g>");

    if aggs.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{mid:.1}" text-anchor="middle" fill="#666666">no runs</text>"##,
            (plot_left + plot_right) / 2.0
        );
    }

    // Colours by scene, in order of first appearance.
    let mut scenes: Vec<&str> = Vec::new();
    for a in aggs {
        if !scenes.contains(&a.scene.as_str()) {
            scenes.push(&a.scene);
        }
    }

    let bar_width = (slot * 0.6).min(60.0);
    let _ = writeln!(s, r#"<g class="bars">"#);
    for (i, a) in aggs.iter().enumerate() {
        let cx = bars_left + slot * (i as f64 + 0.5);
        let color_index = scenes.iter().position(|&n| n == a.scene).unwrap_or(0);
        let color = PALETTE[color_index % PALETTE.len()];
        let mean = unit(a.accuracy_mean);
        let value = mean.unwrap_or(0.0);
        let top = py(value);
        let sd = a.accuracy_sd.filter(|v| v.is_finite() && *v >= 0.0);
        let tooltip = {
            let mut t = format!("{}: ", full[i].join(", "));
            match mean {
                Some(m) => {
                    t.push_str(&percent(m));
                    if let Some(sd) = sd {
                        let _ = write!(t, " ± {}", percent(sd));
                    }
                }
                None => t.push_str("no result"),
            }
            let _ = write!(t, " ({} of {} runs finished", a.finished, a.runs);
            if a.failed > 0 {
                let _ = write!(t, ", {} failed", a.failed);
            }
            t.push(')');
            xml_escape(&t)
        };
        let _ = writeln!(
            s,
            r#"<rect class="bar" x="{:.1}" y="{top:.1}" width="{bar_width:.1}" height="{:.1}" fill="{color}"><title>{tooltip}</title></rect>"#,
            cx - bar_width / 2.0,
            plot_bottom - top
        );
        let mut label_y = top - 5.0;
        if let (Some(m), Some(sd)) = (mean, sd) {
            let lo = py((m - sd).clamp(0.0, 1.0));
            let hi = py((m + sd).clamp(0.0, 1.0));
            let cap = bar_width / 4.0;
            let _ = writeln!(
                s,
                r##"<path class="error-bar" d="M{cx:.1},{lo:.1} V{hi:.1} M{:.1},{lo:.1} H{:.1} M{:.1},{hi:.1} H{:.1}" stroke="#222222" stroke-width="1.5" fill="none"/>"##,
                cx - cap,
                cx + cap,
                cx - cap,
                cx + cap
            );
            label_y = label_y.min(hi - 5.0);
        }
        let value_text = match mean {
            Some(m) => format!("{:.1}%", m * 100.0),
            None => "no result".to_string(),
        };
        let _ = writeln!(
            s,
            r##"<text class="value" x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#333333">{value_text}</text>"##,
            label_y.max(PLOT_TOP - 4.0)
        );
        // The label under the bar.
        if rotated {
            let y = plot_bottom + 14.0;
            let _ = writeln!(
                s,
                r#"<text class="label" x="{cx:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-{ROTATION_DEGREES} {cx:.1} {y:.1})">{}</text>"#,
                xml_escape(&flat_labels[i])
            );
        } else {
            let _ = write!(
                s,
                r#"<text class="label" x="{cx:.1}" y="{:.1}" text-anchor="middle">"#,
                plot_bottom + 16.0
            );
            for (k, line) in labels[i].iter().enumerate() {
                let dy = if k == 0 { "0" } else { "14" };
                let _ = write!(
                    s,
                    r#"<tspan x="{cx:.1}" dy="{dy}">{}</tspan>"#,
                    xml_escape(line)
                );
            }
            let _ = writeln!(s, "</text>");
        }
    }
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>\n");
    s
}

// ---- Writing -----------------------------------------------------------------------------
