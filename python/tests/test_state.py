"""Parameters, checkpoints and export: what leaves the run is what the run holds."""

import threading
import time
import _thread

import numpy as np
import neurograph
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

TIMING = {"seconds", "samples_per_second"}


def strip(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_checkpoint_restore_continue_equals_never_stopping(small_scene, tmp_path):
    straight = neurograph.Run(small_scene)
    straight.train(epochs=1)
    ckpt = tmp_path / "a.ckpt"
    straight.checkpoint(ckpt)
    expected = straight.train(epochs=1)

    resumed = neurograph.Run(small_scene)
    note = resumed.restore(ckpt)
    assert isinstance(note, dict)
    assert resumed.epochs_done == 1 and resumed.samples_seen == 320
    continued = resumed.train(epochs=1)
    assert strip(continued) == strip(expected)
    for mine, theirs in zip(resumed.parameters(), straight.parameters()):
        assert np.array_equal(mine, theirs)


def test_a_corrupt_checkpoint_is_reported(small_scene, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    run = neurograph.Run(small_scene)
    with pytest.raises(neurograph.NeurographError, match="not a neurograph checkpoint"):
        run.restore(bad)


def test_set_parameters_round_trips_and_changes_the_pass(small_scene):
    run = neurograph.Run(small_scene)
    phase, magnitude = run.parameters()
    assert phase.shape == (300, 5) and phase.dtype == np.int32
    before = run.evaluate()
    new_phase = (phase + 256) % 512
    run.set_parameters(new_phase, magnitude)
    got_phase, got_magnitude = run.parameters()
    assert np.array_equal(got_phase, new_phase) and np.array_equal(got_magnitude, magnitude)
    after = run.evaluate()
    assert after["mean_loss"] != before["mean_loss"]


def test_set_parameters_names_the_allowed_range(small_scene):
    run = neurograph.Run(small_scene)
    phase, magnitude = run.parameters()
    phase[3, 2] = 512
    with pytest.raises(ValueError, match=r"phase\[3, 2\] = 512 is outside 0..512"):
        run.set_parameters(phase, magnitude)
    with pytest.raises(ValueError, match="shape"):
        run.set_parameters(phase[:10], magnitude[:10])


def test_export_round_trip_matches_the_run_and_the_cli(cli, small_scene, tmp_path):
    run = neurograph.Run(small_scene)
    run.train(epochs=1)
    run.checkpoint(tmp_path / "m.ckpt")
    run.export(tmp_path / "py.safetensors")
    cli("export", str(tmp_path / "m.ckpt"), "--out", str(tmp_path / "cli.safetensors"))
    phase, magnitude = run.parameters()
    graph = run.graph()
    for name in ("py.safetensors", "cli.safetensors"):
        t = load_file(str(tmp_path / name))
        assert t["nodes.phase"].dtype == np.int32
        assert np.array_equal(t["nodes.phase"], phase)
        assert np.array_equal(t["nodes.magnitude"], magnitude)
        assert np.array_equal(t["graph.indptr"], graph["indptr"])
        assert np.array_equal(t["graph.indices"], graph["indices"])
        assert t["adapter.w1"].shape == (64, 784) and t["adapter.w3"].shape == (50 * 5 * 2, 64)
        assert t["classes.phase"].shape == (10, 5)
        # Adam keeps float shadows of every index.
        assert t["shadows.nodes.phase"].shape == (300, 5)
        with safe_open(str(tmp_path / name), framework="np") as f:
            meta = f.metadata()
        assert meta["format"] == "neurograph-model" and meta["format_version"] == "1"
        assert meta["samples_seen"] == "320" and meta["pixels"] == "784"
        assert neurograph.parse_scene(meta["scene"]).to_ron() == run.scene.to_ron()
    a, b = load_file(str(tmp_path / "py.safetensors")), load_file(str(tmp_path / "cli.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_training_releases_the_gil(tmp_path):
    scene = neurograph.load_scene(
        pathlib_small(tmp_path), sets={"data.source": "Synthetic(train: 2000, test: 10)"}
    )
    run = neurograph.Run(scene)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    started = time.perf_counter()
    run.train(epochs=1)
    finished = time.perf_counter()
    done.set()
    t.join()
    during = [x for x in ticks if started < x < finished]
    # The other thread ran all along: at least a tick per 20 ms of training.
    assert len(during) >= (finished - started) / 0.02


def test_ctrl_c_stops_training_and_the_epoch_continues(tmp_path):
    scene = neurograph.load_scene(
        pathlib_small(tmp_path), sets={"data.source": "Synthetic(train: 4000, test: 10)"}
    )
    run = neurograph.Run(scene)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run.train(epochs=1)
    timer.join()
    seen = run.samples_seen
    assert 0 < seen < 4000 and run.epochs_done == 0
    # The open epoch finishes where it stopped.
    finished = run.train(epochs=1)
    assert run.epochs_done == 1 and finished[0]["samples"] == 4000


def pathlib_small(tmp_path):
    from conftest import SMALL

    path = tmp_path / "small.ron"
    path.write_text(SMALL)
    return path
