"""NeuroGraph from Python: scenes, runs, numpy arrays.

The package wraps the Rust library (``neurograph._native``); nothing here reimplements the
model. Reports are the same JSON the command line writes, returned as dicts.

    import neurograph
    scene = neurograph.load_scene("scenes/quickstart.ron", sets={"data.source": "Synthetic(train: 600, test: 200)"})
    run = neurograph.Run(scene)
    run.train(epochs=1)
    print(run.evaluate(split="test")["accuracy"])
    preds, logits, timesteps = run.forward(images)      # uint8 (n, 28, 28)
    trace = run.trace(images[0])                         # per-timestep arrays of one sample
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, NamedTuple

import numpy as np

from . import _native
from ._native import NeurographError, Scene, SceneError, __version__

__all__ = [
    "Forward",
    "NeurographError",
    "Run",
    "Scene",
    "SceneError",
    "__version__",
    "load_scene",
    "parse_scene",
]

PathLike = str | os.PathLike[str]


def _ron(value: Any) -> str:
    """A Python value as RON text for a ``FIELD=VALUE`` assignment (strings are passed as
    written, so ``"Synthetic(train: 600, test: 200)"`` or ``"Single"`` work)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"a scene value must be a bool, number or RON string, got {type(value).__name__}")


def _assignments(sets: Mapping[str, Any] | None) -> list[str]:
    return [f"{field}={_ron(value)}" for field, value in (sets or {}).items()]


def load_scene(path: PathLike, sets: Mapping[str, Any] | None = None) -> Scene:
    """Loads and validates a scene file; ``sets`` are ``{field: value}`` overrides (the
    command line's ``--set``). Raises :class:`SceneError` with the positioned message."""
    return _native.load_scene(os.fspath(path), _assignments(sets))


def parse_scene(text: str, origin: str = "<string>", sets: Mapping[str, Any] | None = None) -> Scene:
    """Parses and validates scene text (RON)."""
    scene = _native.parse_scene(text, origin)
    return scene.with_sets(_assignments(sets)) if sets else scene


class Forward(NamedTuple):
    """Forward passes of n images."""

    predictions: np.ndarray
    """(n,) int64: the predicted class, -1 where no output became active."""
    logits: np.ndarray
    """(n, classes) float32; NaN rows where no output became active."""
    timesteps: np.ndarray
    """(n,) uint32: timesteps each pass ran."""


def _images(images: np.ndarray) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"images must have shape (n, h, w) or (h, w), got {a.shape}")
    return np.ascontiguousarray(a)


class Run:
    """A run of a scene: its world, data and reports.

    ``out`` (optional) is a run directory as with ``neurograph run --out``: reports, curves
    and relative checkpoint paths go there. Long calls release the GIL and stop at Ctrl-C
    (``KeyboardInterrupt``) after the current sample; the run stays usable.
    """

    def __init__(self, scene: Scene | PathLike, out: PathLike | None = None, quiet: bool = True):
        if not isinstance(scene, Scene):
            scene = load_scene(scene)
        self._run = _native.Run(scene, None if out is None else os.fspath(out), quiet)

    @property
    def scene(self) -> Scene:
        """The scene as the run holds it now."""
        return self._run.scene

    @property
    def epochs_done(self) -> int:
        return self._run.epochs_done

    @property
    def samples_seen(self) -> int:
        return self._run.samples_seen

    def train(self, epochs: int = 1, samples_per_epoch: int | None = None) -> list[dict]:
        """Trains ``epochs`` epochs; returns each epoch's metrics (as in ``metrics.jsonl``)."""
        return json.loads(self._run._train(epochs, samples_per_epoch))

    def evaluate(self, split: str = "test", samples: int | None = None) -> dict:
        """Evaluates the first ``samples`` (default all) of ``"test"``, ``"train"`` or
        ``"validation"`` (with ``data.validation``); returns
        the evaluation as in the JSON report (accuracy, loss, coverage, confusion, ...)."""
        return json.loads(self._run._evaluate(split, samples))

    def script(self) -> dict:
        """Runs the scene's script; returns the report ``neurograph run --json`` prints."""
        return json.loads(self._run._script())

    def training_log(self) -> list[dict]:
        """Every finished training epoch's metrics so far."""
        return json.loads(self._run._training_log())

    def data(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """The run's ``"test"``, ``"train"`` or ``"validation"`` images, uint8 ``(n, h, w)``,
        and labels ``(n,)``."""
        return self._run.data(split)

    def forward(self, images: np.ndarray) -> Forward:
        """Forward passes (evaluation: no dropout, no update) of uint8 images ``(n, h, w)``."""
        return Forward(*self._run.forward(_images(images)))

    def trace(self, image: np.ndarray, label: int = 0) -> dict:
        """The forward pass of one uint8 image ``(h, w)``, recorded after injection and after
        every timestep (T records; one after the pass when ``forward.settle`` is on):

        - ``t`` (T,) uint32, ``tau`` (T,) float32;
        - ``active`` (T, nodes) bool, ``phase`` / ``magnitude`` (T, nodes, D) int32 (φa, μa;
          0 where inactive), ``strength`` (T, nodes) float32 (σ);
        - ``output_signals`` (T, outputs, D) float32;
        - ``sources``: T arrays of the nodes each timestep radiated from, and
          ``radiation_targets``: T arrays (sources, K) int64, -1-padded (empty when radiation
          is off or for the injection record);
        - ``arrivals``: T dicts of arrays ``source``, ``target`` (uint32), ``radiation``,
          ``kept`` (bool: not dropped by the excitatory gate) and ``strength`` (float32), one
          entry per phase cell of the timestep (the rows of ``neurograph trace``'s
          ``arrivals.arrow``);
        - ``logits`` (classes,), ``prediction`` (-1: none), ``timesteps``, ``settled``, ``top_k``.
        ``label`` only sets the reported loss's label; it does not change the pass.
        """
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 2:
            raise TypeError(f"image must be a uint8 (h, w) array, got {a.dtype} {a.shape}")
        return self._run.trace(np.ascontiguousarray(a), label)

    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """``(phase, magnitude)``: θφ and θμ of every node, int32 ``(nodes, D)``."""
        return self._run.parameters()

    def set_parameters(self, phase: np.ndarray, magnitude: np.ndarray) -> None:
        """Replaces every node's parameters (integer arrays ``(nodes, D)`` within the bins)."""
        self._run._set_parameters(
            np.ascontiguousarray(phase, dtype=np.int64), np.ascontiguousarray(magnitude, dtype=np.int64)
        )

    def graph(self) -> dict:
        """The static graph as CSR successors: ``indptr`` (nodes + 1,) int64, ``indices``
        int32, plus ``nodes``, ``inputs``, ``outputs`` and ``layer_sizes``."""
        return self._run.graph()

    def checkpoint(self, path: PathLike) -> None:
        """Saves the run's whole state (a checkpoint file, as a ``Checkpoint`` step writes)."""
        self._run.checkpoint(os.fspath(path))

    def restore(self, path: PathLike) -> dict:
        """Restores the run's state from a checkpoint; returns what was restored."""
        return json.loads(self._run._restore(os.fspath(path)))

    def export(self, path: PathLike) -> None:
        """Writes the model as safetensors (the tensors of ``neurograph export``)."""
        self._run.export(os.fspath(path))
