"""Shared fixtures: the command-line binary (to compare against) and small scenes."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary() -> pathlib.Path:
    """The `neurograph` binary: $NEUROGRAPH_BIN, else the one `cargo test` or `cargo build
    --release` left in target/, else built now."""
    if os.environ.get("NEUROGRAPH_BIN"):
        return pathlib.Path(os.environ["NEUROGRAPH_BIN"])
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "neurograph"
        if candidate.exists():
            return candidate
    subprocess.run(["cargo", "build", "--release", "--bin", "neurograph"], cwd=ROOT, check=True)
    return ROOT / "target" / "release" / "neurograph"


@pytest.fixture(scope="session")
def cli():
    """Runs the command line from the repository root; returns the last stdout line as JSON
    when `json_out`, else the completed process."""
    binary = _binary()

    def call(*args: str, json_out: bool = False):
        proc = subprocess.run([str(binary), *args], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"neurograph {' '.join(args)} failed:\n{proc.stderr}")
        if json_out:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        return proc

    return call


# The quickstart's model (settled pass, SPEC 11 dynamics) on fewer synthetic digits.
SMALL = """Scene(
    name: "py-small",
    seed: 11,
    architecture: (total_nodes: 300, input_nodes: 50, output_nodes: 100, vector_dim: 5, classes: 10),
    graph: Layered(cardinality: 6, layers: 3),
    forward: (max_timesteps: 40, min_timesteps: 5, combine: Phasor(weight: Strength), carry: Replace),
    loss: (temperature: 0.1, readout: Grouped),
    training: (credit: Backprop, optimizer: Adam(lr: 3.0, decay: 0.85), batch_size: 16, learn_encodings: true),
    adapter: Mlp(hidden: 64, dropout: 0.0),
    encodings: Prototype,
    data: (source: Synthetic(train: 320, test: 120)),
    schedule: (executor: Single, threads: 1, eval_replicas: 2, train_worlds: 2),
    script: [Evaluate(split: Test), Train(epochs: 2), Evaluate(split: Test)],
)
"""

# The production dynamics (timestep loop, radiation on, dropout) on a small graph.
RADIATION = """Scene(
    name: "py-radiation",
    seed: 5,
    architecture: (total_nodes: 200, input_nodes: 40, output_nodes: 20, vector_dim: 5, classes: 10),
    graph: Layered(cardinality: 4, layers: 3),
    radiation: (enabled: true, top_k: 4),
    adapter: Mlp(hidden: 32, dropout: 0.1),
    data: (source: Synthetic(train: 60, test: 30)),
    script: [Train(epochs: 1), Evaluate(split: Test)],
)
"""


@pytest.fixture
def small_scene(tmp_path):
    path = tmp_path / "small.ron"
    path.write_text(SMALL)
    return path


@pytest.fixture
def radiation_scene(tmp_path):
    path = tmp_path / "radiation.ron"
    path.write_text(RADIATION)
    return path
