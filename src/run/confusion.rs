//! The confusion-matrix heat map of an evaluation (`confusion-<step>.svg` in the run
//! directory): rows are labels, columns predictions, each cell shaded by its share of the
//! row (the per-class recall on the diagonal) and printed with its count.

use std::fmt::Write as _;

use super::plot::{svg_open, xml_escape};
use super::report::{Evaluation, split_name};

const CELL: f64 = 36.0;
const LEFT: f64 = 90.0;
const TOP: f64 = 80.0;

/// A colour from white (0) to dark blue (1).
fn shade(f: f64) -> String {
    let f = f.clamp(0.0, 1.0);
    let mix = |white: f64, full: f64| (white + (full - white) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(255.0, 8.0),
        mix(255.0, 48.0),
        mix(255.0, 107.0)
    )
}

/// Renders the heat map of `e` under `title`.
pub fn render(e: &Evaluation, title: &str) -> String {
    let classes = e.confusion.len();
    let width = LEFT + CELL * classes as f64 + 110.0;
    let height = TOP + CELL * classes as f64 + 70.0;
    let mut s = String::new();
    svg_open(&mut s, width, height, 11, 24.0, title);
    let subtitle = format!(
        "{} split, {} samples, accuracy {:.2}%, after {} epochs ({} samples seen)",
        split_name(e.split),
        e.samples,
        100.0 * e.accuracy,
        e.after_epochs,
        e.samples_seen
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="44" text-anchor="middle">{}</text>"#,
        width / 2.0,
        xml_escape(&subtitle)
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">prediction</text>"#,
        LEFT + CELL * classes as f64 / 2.0,
        TOP - 22.0
    );
    let mid = TOP + CELL * classes as f64 / 2.0;
    let _ = writeln!(
        s,
        r#"<text x="30" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 30 {mid:.1})">label</text>"#
    );
    for (i, row) in e.confusion.iter().enumerate() {
        let total: u32 = row.iter().sum();
        let y = TOP + CELL * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{i}</text>"#,
            LEFT - 8.0,
            y + CELL / 2.0 + 4.0
        );
        for (j, &count) in row.iter().enumerate() {
            let x = LEFT + CELL * j as f64;
            let f = if total == 0 {
                0.0
            } else {
                f64::from(count) / f64::from(total)
            };
            let ink = if f > 0.5 { "#ffffff" } else { "#222222" };
            let _ = writeln!(
                s,
                r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{CELL}" height="{CELL}" fill="{}" stroke="#dddddd"><title>label {i}, prediction {j}: {count} of {total}</title></rect>"##,
                shade(f)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{ink}">{count}</text>"#,
                x + CELL / 2.0,
                y + CELL / 2.0 + 4.0
            );
        }
        let recall = if total == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.0}%",
                100.0 * f64::from(row.get(i).copied().unwrap_or(0)) / f64::from(total)
            )
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{recall}</text>"#,
            LEFT + CELL * classes as f64 + 10.0,
            y + CELL / 2.0 + 4.0
        );
    }
    for j in 0..classes {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{j}</text>"#,
            LEFT + CELL * j as f64 + CELL / 2.0,
            TOP - 6.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">recall</text>"#,
        LEFT + CELL * classes as f64 + 10.0,
        TOP - 6.0
    );
    let uncovered = e.samples as u64
        - e.confusion
            .iter()
            .flatten()
            .map(|&c| u64::from(c))
            .sum::<u64>()
            .min(e.samples as u64);
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666666">{uncovered} samples without an active output are not counted</text>"##,
        width / 2.0,
        height - 20.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plot::svg_check::assert_well_formed;

    #[test]
    fn cells_hold_the_counts_and_shade_by_row_share() {
        let mut e = crate::state::Tally::new(3).finish(crate::scene::Split::Test, 0.0);
        e.samples = 10;
        e.confusion = vec![vec![3, 1, 0], vec![0, 4, 0], vec![0, 0, 0]];
        let svg = render(&e, "t <1>");
        assert_well_formed(&svg);
        assert_eq!(svg.matches(r#"class="cell""#).count(), 9);
        // Row 0: 3 of 4 is 0.75 of the way to dark blue; row 1's diagonal is all of it.
        assert!(svg.contains(&format!(r#"fill="{}""#, shade(0.75))));
        assert!(svg.contains("label 1, prediction 1: 4 of 4"));
        assert_eq!(shade(1.0), "#08306b");
        assert_eq!(shade(0.0), "#ffffff");
        assert!(svg.contains(">75%<") && svg.contains(">100%<") && svg.contains(">-<"));
        assert!(svg.contains("2 samples without an active output"));
        assert!(svg.contains("t &lt;1&gt;"));
    }
}
