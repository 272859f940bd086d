"""Checks that a trained model survives export, reload and prediction (issue 14):

    neurograph run scenes/mnist-deep.ron --out runs/mnist-deep
    neurograph export runs/mnist-deep/mnist-deep.ckpt --out runs/mnist-deep/model.safetensors
    neurograph predict runs/mnist-deep/mnist-deep.ckpt data/mnist/t10k-images-idx3-ubyte \
        --labels data/mnist/t10k-labels-idx1-ubyte --out runs/mnist-deep/predictions.csv
    python examples/python/check_export.py runs/mnist-deep

compares, on the held-out digits: the run's own last evaluation (summary.json), the CLI's
predictions (predictions.csv), and a Python run restored from the checkpoint whose exported
tensors equal its parameters.
"""

import csv
import json
import pathlib
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

import neurograph


def read_idx(path):
    raw = pathlib.Path(path).read_bytes()
    magic = int.from_bytes(raw[:4], "big")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def main(run_dir):
    run_dir = pathlib.Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    own = summary["evaluations"][-1]
    tensors = load_file(str(run_dir / "model.safetensors"))
    with safe_open(str(run_dir / "model.safetensors"), framework="np") as f:
        scene = neurograph.parse_scene(f.metadata()["scene"])
    run = neurograph.Run(scene)
    run.restore(next(run_dir.glob("*.ckpt")))
    phase, magnitude = run.parameters()
    assert np.array_equal(tensors["nodes.phase"], phase), "exported phases differ"
    assert np.array_equal(tensors["nodes.magnitude"], magnitude), "exported magnitudes differ"
    images = read_idx("data/mnist/t10k-images-idx3-ubyte")
    labels = read_idx("data/mnist/t10k-labels-idx1-ubyte")
    out = run.forward(images)
    rows = list(csv.DictReader((run_dir / "predictions.csv").open()))
    cli = np.array([int(r["prediction"]) if r["prediction"] else -1 for r in rows])
    assert np.array_equal(cli, out.predictions), "Python and CLI predictions differ"
    accuracy = float((out.predictions == labels).mean())
    assert accuracy == own["accuracy"], (accuracy, own["accuracy"])
    print(
        f"{len(labels)} held-out digits: Python forward, neurograph predict and the run's own "
        f"evaluation agree on every prediction; accuracy {100 * accuracy:.2f}%"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/mnist-deep")
