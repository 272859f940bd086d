//! Tests of the batch summaries.

use super::*;
use crate::batch::chart::*;
use crate::run::plot::svg_check::assert_well_formed;
use std::fs;

fn row(scene: &str, grid: &[(&str, &str)], seed: u64, accuracy: Option<f64>) -> RunRow {
    RunRow {
        index: seed as usize,
        scene: scene.to_string(),
        scene_path: format!("scenes/{scene}.ron"),
        seed,
        grid: grid
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect(),
        status: RunStatus::Done,
        error: None,
        accuracy,
        coverage: accuracy.map(|_| 0.9),
        loss: accuracy.map(|a| 2.0 - a),
        samples_per_second: Some(100.0 * seed as f64),
        wall_seconds: 1.5,
        dir: format!("out/{scene}-s{seed}"),
    }
}

fn failed(mut r: RunRow, error: &str) -> RunRow {
    r.status = RunStatus::Failed;
    r.error = Some(error.to_string());
    r
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

/// A minimal RFC 4180 reader: records of cells.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                c => cell.push(c),
            }
        } else {
            match c {
                '"' => {
                    assert!(cell.is_empty(), "quote inside an unquoted cell");
                    quoted = true;
                }
                ',' => record.push(std::mem::take(&mut cell)),
                '\n' => {
                    record.push(std::mem::take(&mut cell));
                    records.push(std::mem::take(&mut record));
                }
                c => cell.push(c),
            }
        }
    }
    assert!(
        !quoted && cell.is_empty() && record.is_empty(),
        "no final newline"
    );
    records
}

#[test]
fn means_and_sample_sd() {
    let g = [("training.rate", "0.1")];
    let rows = vec![row("a", &g, 1, Some(0.2)), row("a", &g, 2, Some(0.4))];
    let aggs = aggregate(&rows);
    assert_eq!(aggs.len(), 1);
    let a = &aggs[0];
    assert_eq!((a.runs, a.finished, a.failed), (2, 2, 0));
    assert!(close(a.accuracy_mean, 0.3));
    assert!(close(a.accuracy_sd, 0.02f64.sqrt()), "{:?}", a.accuracy_sd);
    assert!(close(a.accuracy_sd, 0.141_421_356_237_309_5));
    assert!(close(a.loss_mean, 1.7));
    assert!(close(a.loss_sd, 0.02f64.sqrt()));
    assert!(close(a.coverage_mean, 0.9));
    assert!(close(a.samples_per_second_mean, 150.0));

    // Three values: 1, 2, 4 → mean 7/3, sd sqrt(((−4/3)² + (−1/3)² + (5/3)²) / 2) = sqrt(7/3).
    let rows: Vec<RunRow> = [0.1, 0.2, 0.4]
        .iter()
        .enumerate()
        .map(|(i, &v)| row("b", &[], i as u64, Some(v)))
        .collect();
    let a = &aggregate(&rows)[0];
    assert!(close(a.accuracy_mean, 0.7 / 3.0));
    assert!(close(a.accuracy_sd, (7.0f64 / 3.0).sqrt() / 10.0));
}

#[test]
fn one_value_has_no_sd_and_no_values_have_no_mean() {
    let rows = vec![row("a", &[], 1, Some(0.5))];
    let a = &aggregate(&rows)[0];
    assert!(close(a.accuracy_mean, 0.5));
    assert_eq!((a.accuracy_sd, a.loss_sd), (None, None));

    let rows = vec![
        failed(row("a", &[], 1, None), "boom"),
        row("a", &[], 2, None),
    ];
    let a = &aggregate(&rows)[0];
    assert_eq!((a.runs, a.finished, a.failed), (2, 1, 1));
    assert_eq!(a.accuracy_mean, None);
    assert_eq!(a.accuracy_sd, None);
    assert_eq!(a.coverage_mean, None);
    assert_eq!(a.loss_mean, None);
    assert!(aggregate(&[]).is_empty());
}

#[test]
fn failed_and_interrupted_runs_are_counted_not_averaged() {
    let mut interrupted = row("a", &[], 4, Some(0.0));
    interrupted.status = RunStatus::Interrupted;
    let mut skipped = row("a", &[], 2, Some(0.6));
    skipped.status = RunStatus::Skipped;
    let mut nan = row("a", &[], 5, Some(f64::NAN));
    nan.loss = Some(f64::INFINITY);
    let rows = vec![
        row("a", &[], 1, Some(0.4)),
        skipped,
        // A failed run that still carries a number must not count.
        failed(row("a", &[], 3, Some(1.0)), "out of memory"),
        interrupted,
        nan,
    ];
    let a = &aggregate(&rows)[0];
    assert_eq!((a.runs, a.finished, a.failed), (5, 3, 1));
    assert!(close(a.accuracy_mean, 0.5));
    assert!(close(a.accuracy_sd, 0.02f64.sqrt()));
    assert!(close(a.loss_mean, 1.5));
}

#[test]
fn groups_in_first_appearance_order() {
    let g1 = [("f", "1")];
    let g2 = [("f", "2")];
    let rows = vec![
        row("zeta", &g2, 1, Some(0.1)),
        row("alpha", &g1, 1, Some(0.2)),
        row("zeta", &g1, 1, Some(0.3)),
        row("alpha", &g1, 2, Some(0.4)),
        row("zeta", &g2, 2, Some(0.5)),
        row("alpha", &[("f", "1"), ("g", "x")], 1, Some(0.6)),
    ];
    let aggs = aggregate(&rows);
    let keys: Vec<(String, String, usize)> = aggs
        .iter()
        .map(|a| (a.scene.clone(), grid_text(&a.grid), a.runs))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("zeta".into(), "f=2".into(), 2),
            ("alpha".into(), "f=1".into(), 2),
            ("zeta".into(), "f=1".into(), 1),
            ("alpha".into(), "f=1;g=x".into(), 1),
        ]
    );
    assert!(close(aggs[0].accuracy_mean, 0.3));
    assert!(close(aggs[1].accuracy_mean, 0.3));
}

#[test]
fn rows_csv_quotes_and_round_trips() {
    let nasty = "bad value, \"quoted\"\nsecond line";
    let rows = vec![
        row(
            "quick",
            &[("model.k", "4"), ("train.lr", "(1,2)")],
            7,
            Some(0.25),
        ),
        failed(row("odd,name", &[], 8, None), nasty),
    ];
    let text = rows_csv(&rows);
    let records = parse_csv(&text);
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0].join(","),
        "index,scene,scene_path,seed,grid,status,error,accuracy,coverage,loss,\
         samples_per_second,wall_seconds,dir"
    );
    assert!(records.iter().all(|r| r.len() == 13));
    assert_eq!(
        records[1],
        [
            "7",
            "quick",
            "scenes/quick.ron",
            "7",
            "model.k=4;train.lr=(1,2)",
            "done",
            "",
            "0.25",
            "0.9",
            "1.75",
            "700",
            "1.5",
            "out/quick-s7"
        ]
    );
    assert_eq!(records[2][1], "odd,name");
    assert_eq!(records[2][5], "failed");
    assert_eq!(records[2][6], nasty);
    assert_eq!(records[2][7..10], ["", "", ""]);
    assert!(text.contains("\"bad value, \"\"quoted\"\"\nsecond line\""));
    assert!(text.contains(",\"model.k=4;train.lr=(1,2)\","));
}

#[test]
fn jsonl_round_trip() {
    let rows = vec![
        row("quick", &[("model.k", "4")], 7, Some(0.25)),
        failed(row("b", &[], 8, None), "line\nbreak, \"q\""),
    ];
    let text = rows_jsonl(&rows);
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with('\n'));
    let back: Vec<RunRow> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, rows);
    assert!(text.contains(r#""status":"failed""#));
    assert!(text.contains(r#""grid":[["model.k","4"]]"#));
    assert!(text.contains(r#""accuracy":null"#));
    assert_eq!(rows_jsonl(&[]), "");
    let status: RunStatus = serde_json::from_str("\"interrupted\"").unwrap();
    assert_eq!(status, RunStatus::Interrupted);
}

#[test]
fn aggregate_csv_content() {
    let rows = vec![
        row("a", &[("x", "1,2")], 1, Some(0.2)),
        row("a", &[("x", "1,2")], 2, Some(0.4)),
        failed(row("b", &[], 1, None), "e"),
    ];
    let records = parse_csv(&aggregate_csv(&aggregate(&rows)));
    assert_eq!(
        records[0].join(","),
        "scene,grid,runs,finished,failed,accuracy_mean,accuracy_sd,coverage_mean,\
         loss_mean,loss_sd,samples_per_second_mean"
    );
    assert_eq!(records.len(), 3);
    assert_eq!(records[1][..5], ["a", "x=1,2", "2", "2", "0"]);
    let sd: f64 = records[1][6].parse().unwrap();
    assert!((sd - 0.02f64.sqrt()).abs() < 1e-12);
    assert_eq!(records[2], ["b", "", "1", "0", "1", "", "", "", "", "", ""]);
}

#[test]
fn table_is_aligned() {
    let rows = vec![
        row("quickstart", &[("model.k", "4")], 1, Some(0.2)),
        row("quickstart", &[("model.k", "4")], 2, Some(0.4)),
        row("b", &[], 1, Some(0.5)),
        failed(row("c", &[], 1, None), "e"),
    ];
    let table = aggregate_table(&aggregate(&rows));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("scene"));
    assert!(lines[0].contains("grid point") && lines[0].contains("samples/s"));
    assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
    assert!(lines[2].contains("model.k=4"));
    assert!(lines[2].contains("30.00% ± 14.14%"), "{table}");
    assert!(lines[2].contains("1.7000 ± 0.1414"), "{table}");
    assert!(lines[3].contains("50.00%") && !lines[3].contains('±'));
    assert!(lines[4].contains(" -"));
    // The right-aligned last column ends every line at the same character.
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    // Columns start where the header's do.
    let col = lines[0].find("runs").unwrap();
    let rule_col: usize = lines[1][..col].len();
    assert_eq!(&lines[1][rule_col - 2..rule_col], "  ");
    // Nothing but a header and a rule for no aggregates.
    assert_eq!(aggregate_table(&[]).lines().count(), 2);
}

fn bars(svg: &str) -> usize {
    svg.matches(r#"<rect class="bar""#).count()
}

#[test]
fn svg_one_point_escapes_and_error_bars() {
    let rows = vec![
        row("q<&>", &[("f", "\"x\"")], 1, Some(0.2)),
        row("q<&>", &[("f", "\"x\"")], 2, Some(0.4)),
    ];
    let svg = render_comparison_svg(&aggregate(&rows), "batch <1> & \"two\"");
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_well_formed(&svg);
    assert_eq!(bars(&svg), 1);
    assert_eq!(svg.matches(r#"class="error-bar""#).count(), 1);
    assert!(svg.contains("batch &lt;1&gt; &amp; &quot;two&quot;"));
    assert!(svg.contains(">q&lt;&amp;&gt;<"));
    assert!(svg.contains("f=&quot;x&quot;"));
    assert!(svg.contains(">30.0%<"));
    assert!(svg.contains(">100%<") && svg.contains(">0%<"));
    // The bar's height is 30% of the plot.
    assert!(svg.contains(&format!(r#"height="{:.1}""#, 0.3 * PLOT_HEIGHT)));
}

#[test]
fn svg_without_finished_runs() {
    let rows = vec![
        failed(row("a", &[], 1, None), "x"),
        failed(row("b", &[], 1, None), "y"),
    ];
    let svg = render_comparison_svg(&aggregate(&rows), "t");
    assert_well_formed(&svg);
    assert_eq!(bars(&svg), 2);
    assert!(svg.contains(r#"height="0.0""#));
    assert!(svg.contains("no result"));
    assert!(!svg.contains("error-bar"));

    let svg = render_comparison_svg(&[], "empty");
    assert_well_formed(&svg);
    assert_eq!(bars(&svg), 0);
    assert!(svg.contains(">no runs<"));
}

#[test]
fn svg_twenty_points_with_long_labels() {
    let mut rows = Vec::new();
    for i in 0..20u64 {
        let v = format!("[{i}, 0.5, 0.25, 0.125, 0.0625, 0.03125]");
        let grid = [
            ("training.learning_rate_schedule.initial", v.as_str()),
            ("model.k", "8"),
        ];
        for seed in 0..3 {
            let acc = (i as f64 * 0.05 + seed as f64 * 0.01).min(1.2);
            rows.push(row(
                if i < 10 { "quickstart" } else { "other" },
                &grid,
                seed,
                Some(acc),
            ));
        }
    }
    let aggs = aggregate(&rows);
    assert_eq!(aggs.len(), 20);
    let svg = render_comparison_svg(&aggs, "twenty");
    assert_well_formed(&svg);
    assert_eq!(bars(&svg), 20);
    assert_eq!(svg.matches(r#"class="error-bar""#).count(), 20);
    assert_eq!(svg.matches(r#"<text class="label""#).count(), 20);
    // Long labels are rotated and cut, with the full label in the tooltip.
    assert!(svg.contains("rotate(-40"));
    assert!(svg.contains('…'));
    assert!(svg.contains(
        "training.learning_rate_schedule.initial=[19, 0.5, 0.25, 0.125, 0.0625, 0.03125], \
         model.k=8"
    ));
    // Under the bar: the short field name and the end of the label survive the cut.
    for label in svg.split(r#"<text class="label""#).skip(1) {
        let text = &label[label.find('>').unwrap() + 1..label.find("</text>").unwrap()];
        assert!(text.chars().count() <= MAX_ROTATED_CHARS, "{text}");
        assert!(text.starts_with("quickstart · in") || text.starts_with("other · in"));
        assert!(text.contains('…') && text.ends_with("0.03125]"), "{text}");
    }
    // model.k=8 is shared by every point: it is said once, above the bars.
    assert!(svg.contains(r##"fill="#555555">every point: model.k=8</text>"##));
    // The first rotated label fits: the plot is shifted right to make room.
    let frame = svg.split(r#"class="frame" points=""#).nth(1).unwrap();
    let left: f64 = frame[..frame.find(',').unwrap()].parse().unwrap();
    let first = svg.split(r#"<text class="label" x=""#).nth(1).unwrap();
    let cx: f64 = first[..first.find('"').unwrap()].parse().unwrap();
    let label = &first[first.find('>').unwrap() + 1..first.find("</text>").unwrap()];
    let reach = label.chars().count() as f64 * CHAR_WIDTH * 40f64.to_radians().cos();
    assert!(cx - reach >= 0.0, "{cx} {reach} {left}");
    // Accuracies above 1 are clamped to the axis.
    let heights: Vec<f64> = svg
        .split(r#"<rect class="bar""#)
        .skip(1)
        .map(|r| {
            let h = r.split(r#"height=""#).nth(1).unwrap();
            h[..h.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(heights.iter().all(|&h| (0.0..=PLOT_HEIGHT).contains(&h)));
    assert!(heights.windows(2).all(|w| w[0] <= w[1]));
    // Two scenes, two colours.
    assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
}

#[test]
fn short_field_names_only_when_unambiguous() {
    let rows = vec![
        row("a", &[("training.rate", "1"), ("model.rate", "2")], 1, None),
        row(
            "a",
            &[("model.k", "1"), ("k", "2"), ("x.y.z", "3")],
            1,
            None,
        ),
    ];
    let names = short_field_names(&aggregate(&rows));
    assert_eq!(names["training.rate"], "training.rate");
    assert_eq!(names["model.rate"], "model.rate");
    assert_eq!(names["model.k"], "model.k");
    assert_eq!(names["k"], "k");
    assert_eq!(names["x.y.z"], "z");
    assert_eq!(truncate_middle("abcdefghij", 10), "abcdefghij");
    assert_eq!(truncate_middle("abcdefghijk", 10), "abc…fghijk");
}

#[test]
fn svg_short_labels_are_wrapped() {
    let rows = vec![
        row("a", &[("model.k", "4"), ("lr", "0.1")], 1, Some(0.5)),
        row("a", &[("model.k", "8"), ("lr", "0.1")], 1, Some(0.6)),
    ];
    let svg = render_comparison_svg(&aggregate(&rows), "t");
    assert_well_formed(&svg);
    assert!(!svg.contains("rotate(-40"));
    assert_eq!(svg.matches("<tspan").count(), 4);
    assert!(svg.contains(">k=8</tspan>"));
    assert!(svg.contains("every point: lr=0.1"));
    assert!(!svg.contains(">lr=0.1</tspan>"));
    assert!(svg.contains("<title>a, model.k=8, lr=0.1: 60.00% (1 of 1 runs finished)</title>"));
}

#[test]
fn write_summary_writes_five_files_and_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("batch");
    let rows = vec![
        row("a", &[("k", "4")], 1, Some(0.2)),
        row("a", &[("k", "4")], 2, Some(0.4)),
        failed(row("b", &[], 1, None), "bad, \"scene\"\n"),
    ];
    let aggs = write_summary(&out, &rows, "title").unwrap();
    assert_eq!(aggs, aggregate(&rows));
    // Rewriting (as after every run of a batch) replaces the files.
    let aggs = write_summary(&out, &rows[..2], "title").unwrap();
    assert_eq!(aggs.len(), 1);
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            AGGREGATE_CSV_FILE,
            AGGREGATE_TXT_FILE,
            COMPARISON_SVG_FILE,
            CURVES_SVG_FILE,
            SUMMARY_CSV_FILE,
            SUMMARY_JSONL_FILE
        ]
    );
    let read = |name: &str| fs::read_to_string(out.join(name)).unwrap();
    assert_eq!(read(SUMMARY_CSV_FILE), rows_csv(&rows[..2]));
    assert_eq!(read(SUMMARY_JSONL_FILE), rows_jsonl(&rows[..2]));
    assert_eq!(read(AGGREGATE_CSV_FILE), aggregate_csv(&aggs));
    assert_eq!(read(AGGREGATE_TXT_FILE), aggregate_table(&aggs));
    assert_eq!(
        read(COMPARISON_SVG_FILE),
        render_comparison_svg(&aggs, "title")
    );
}
