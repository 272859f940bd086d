"""Python runs equal the command line's for the same scene and seed, bit for bit."""

import json

import neurograph

TIMING = {"seconds", "samples_per_second"}


def strip(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_script_metrics_equal_the_cli_report(cli, small_scene, tmp_path):
    expected = cli("run", str(small_scene), "--json", "-q", "--out", str(tmp_path / "cli"), json_out=True)
    run = neurograph.Run(small_scene, out=tmp_path / "py")
    report = run.script()
    assert strip(report["training"]) == strip(expected["training"])
    assert strip(report["evaluations"]) == strip(expected["evaluations"])
    assert len(report["training"]) == 2
    # The run directory has the CLI's files too.
    assert (tmp_path / "py" / "summary.json").exists()
    lines = [json.loads(l) for l in (tmp_path / "py" / "metrics.jsonl").read_text().splitlines()]
    # Two epoch lines and a line per evaluation (its step, epochs done and samples seen).
    assert [l.get("kind") for l in lines] == ["evaluation", None, None, "evaluation"]
    assert [l["samples_seen"] for l in lines if l.get("kind")] == [0, 640]


def test_train_and_evaluate_calls_equal_the_script(cli, small_scene, tmp_path):
    expected = cli("run", str(small_scene), "--json", "-q", "--out", str(tmp_path / "cli"), json_out=True)
    run = neurograph.Run(small_scene)
    before = run.evaluate(split="test")
    epochs = run.train(epochs=2)
    after = run.evaluate(split="test")
    assert strip(epochs) == strip(expected["training"])
    cli_evals = strip(expected["evaluations"])
    for mine, theirs in zip(strip([before, after]), cli_evals):
        # `step` and `after_epochs` say which script step an evaluation came from.
        mine = {k: v for k, v in mine.items() if k not in ("step", "after_epochs")}
        theirs = {k: v for k, v in theirs.items() if k not in ("step", "after_epochs")}
        assert mine == theirs
    assert run.epochs_done == 2
    assert run.samples_seen == 640
    assert strip(run.training_log()) == strip(epochs)
