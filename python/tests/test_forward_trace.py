"""Forward passes and traces: shapes, and values against the CLI and against each other."""

import csv

import numpy as np
import neurograph
import pytest


def write_idx_images(path, images):
    n, h, w = images.shape
    header = np.array([0x00000803, n, h, w], dtype=">u4").tobytes()
    path.write_bytes(header + images.astype(np.uint8).tobytes())


def write_idx_labels(path, labels):
    header = np.array([0x00000801, len(labels)], dtype=">u4").tobytes()
    path.write_bytes(header + np.asarray(labels, dtype=np.uint8).tobytes())


def images(n, seed=0):
    return (np.random.default_rng(seed).random((n, 28, 28)) * 255).astype(np.uint8)


def test_forward_shapes_and_dtypes(small_scene):
    run = neurograph.Run(small_scene)
    out = run.forward(images(5))
    assert out.predictions.shape == (5,) and out.predictions.dtype == np.int64
    assert out.logits.shape == (5, 10) and out.logits.dtype == np.float32
    assert out.timesteps.shape == (5,) and out.timesteps.dtype == np.uint32
    covered = out.predictions >= 0
    assert np.array_equal(out.predictions[covered], out.logits[covered].argmax(axis=1))
    # A single (h, w) image is a batch of one.
    one = run.forward(images(5)[0])
    assert np.array_equal(one.logits, out.logits[:1], equal_nan=True)


def test_forward_rejects_wrong_images(small_scene):
    run = neurograph.Run(small_scene)
    with pytest.raises(ValueError, match="784 pixels"):
        run.forward(np.zeros((2, 10, 10), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        run.forward(np.zeros((2, 28, 28), np.float32))


def test_forward_equals_cli_predict(cli, small_scene, tmp_path):
    run = neurograph.Run(small_scene)
    run.train(epochs=1)
    ckpt = tmp_path / "m.ckpt"
    run.checkpoint(ckpt)
    x = images(12, seed=3)
    labels = np.arange(12) % 10
    write_idx_images(tmp_path / "x.idx", x)
    write_idx_labels(tmp_path / "y.idx", labels)
    out_csv = tmp_path / "p.csv"
    summary = cli(
        "predict", str(ckpt), str(tmp_path / "x.idx"), "--labels", str(tmp_path / "y.idx"),
        "--out", str(out_csv), "--json", "-q", json_out=True,
    )
    mine = run.forward(x)
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 12 and summary["images"] == 12
    for i, row in enumerate(rows):
        assert int(row["index"]) == i
        assert int(row["label"]) == labels[i]
        predicted = int(row["prediction"]) if row["prediction"] else -1
        assert predicted == mine.predictions[i]
        assert int(row["timesteps"]) == mine.timesteps[i]
        logits = np.array([float(row[f"logit_{c}"]) for c in range(10)], dtype=np.float32)
        assert np.array_equal(logits, mine.logits[i])
    correct = (mine.predictions == labels).mean()
    assert summary["accuracy"] == pytest.approx(correct, abs=0)


def test_trace_ends_where_forward_ends(small_scene, radiation_scene):
    for path in (small_scene, radiation_scene):
        run = neurograph.Run(path)
        x = images(3, seed=1)
        out = run.forward(x)
        for i in range(3):
            tr = run.trace(x[i])
            assert tr["prediction"] == out.predictions[i]
            assert tr["timesteps"] == out.timesteps[i]
            if tr["prediction"] >= 0:
                assert np.array_equal(tr["logits"], out.logits[i])


def test_trace_records_injection_then_every_timestep(radiation_scene):
    run = neurograph.Run(radiation_scene)
    g = run.graph()
    n, inputs, outputs = g["nodes"], g["inputs"], g["outputs"]
    tr = run.trace(images(1, seed=2)[0])
    steps = len(tr["t"])
    assert not tr["settled"] and tr["top_k"] == 4
    assert list(tr["t"]) == list(range(steps)) and steps == tr["timesteps"] + 1
    assert tr["active"].shape == (steps, n)
    assert tr["phase"].shape == tr["magnitude"].shape == (steps, n, 5)
    assert tr["output_signals"].shape == (steps, outputs, 5)
    # Timestep 0: exactly the inputs are active, with strength 1.
    assert tr["active"][0, :inputs].all() and not tr["active"][0, inputs:].any()
    assert np.all(tr["strength"][0, :inputs] == 1.0)
    # Inactive nodes carry zeros.
    assert np.all(tr["phase"][~tr["active"]] == 0) and np.all(tr["strength"][~tr["active"]] == 0)
    phase_bins, magnitude_bins = 512, 1024
    assert tr["phase"].max() < phase_bins and tr["magnitude"].max() < magnitude_bins
    for s in range(1, steps):
        # A timestep's sources are the nodes active when it began.
        assert np.array_equal(tr["sources"][s], np.flatnonzero(tr["active"][s - 1]))
        targets = tr["radiation_targets"][s]
        assert targets.shape == (len(tr["sources"][s]), 4)
        for src, row in zip(tr["sources"][s], targets):
            found = row[row >= 0]
            assert len(set(found)) == len(found)
            assert src not in found
            assert np.all(found < n)
    # Output signals are cos(2πφ/N)·exp(sin(−π + 2πμ/(M−1))) of the outputs' activations
    # (SPEC 2's tables, computed here in float64), zero where inactive.
    active_outputs = tr["active"][:, n - outputs:]
    phi, mu = tr["phase"][:, n - outputs:], tr["magnitude"][:, n - outputs:]
    expected = np.cos(2 * np.pi * phi / phase_bins) * np.exp(np.sin(-np.pi + 2 * np.pi * mu / (magnitude_bins - 1)))
    expected[~active_outputs] = 0
    assert active_outputs.any()
    np.testing.assert_allclose(tr["output_signals"], expected, rtol=1e-5, atol=1e-6)


def test_trace_does_not_change_the_run(small_scene):
    a, b = neurograph.Run(small_scene), neurograph.Run(small_scene)
    a.trace(images(1)[0])
    ea, eb = a.evaluate(), b.evaluate()
    for e in (ea, eb):
        e.pop("seconds"), e.pop("samples_per_second")
    assert ea == eb


def test_data_returns_the_split_the_run_evaluates(small_scene):
    run = neurograph.Run(small_scene)
    x, y = run.data("test")
    assert x.shape == (120, 28, 28) and x.dtype == np.uint8 and y.shape == (120,)
    out = run.forward(x)
    e = run.evaluate(split="test")
    assert e["accuracy"] == (out.predictions == y).mean()
    with pytest.raises(ValueError, match="split"):
        run.data("valid")


def test_trace_arrivals_equal_the_cli_trace_files(cli, radiation_scene, tmp_path):
    import pandas as pd  # with pyarrow, from the package's test extras
    cli("trace", str(radiation_scene), "--samples", "0,4", "--out", str(tmp_path / "tr"))
    run = neurograph.Run(radiation_scene)
    x, _ = run.data("test")
    table = pd.read_feather(tmp_path / "tr" / "arrivals.arrow")
    nodes = pd.read_feather(tmp_path / "tr" / "nodes.arrow")
    for sample in (0, 4):
        tr = run.trace(x[sample])
        for t, arrivals in enumerate(tr["arrivals"]):
            rows = table[(table["sample"] == sample) & (table["t"] == t)]
            assert np.array_equal(rows["source"].to_numpy(), arrivals["source"])
            assert np.array_equal(rows["target"].to_numpy(), arrivals["target"])
            assert np.array_equal(rows["kept"].to_numpy(), arrivals["kept"])
            assert np.array_equal(rows["strength"].to_numpy(), arrivals["strength"])
            active = nodes[(nodes["sample"] == sample) & (nodes["t"] == t)]
            assert np.array_equal(active["node"].to_numpy(), np.flatnonzero(tr["active"][t]))
            assert np.array_equal(active["strength"].to_numpy(), tr["strength"][t][tr["active"][t]])
            assert np.array_equal(active["phase_0"].to_numpy(), tr["phase"][t][tr["active"][t], 0])
