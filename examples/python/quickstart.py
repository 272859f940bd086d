"""Trains the quickstart scene from Python, looks inside one pass, and plots it.

    pip install ./python            # once; add matplotlib for the picture
    python examples/python/quickstart.py

Run it from the repository root (the scene's paths are relative to it).
"""

import numpy as np

import neurograph

scene = neurograph.load_scene("scenes/quickstart.ron")
run = neurograph.Run(scene, quiet=False)
print("untrained:", run.evaluate(split="test")["accuracy"])
for epoch in run.train(epochs=6):
    print(f"epoch {epoch['epoch']}: loss {epoch['loss']:.4f}, training accuracy {epoch['accuracy']:.4f}")
print("trained:  ", run.evaluate(split="test")["accuracy"])

images, labels = run.data("test")
out = run.forward(images[:10])
print("first ten test digits:", labels[:10], "predicted:", out.predictions)

trace = run.trace(images[0], label=int(labels[0]))
print(
    f"trace of test digit 0 (label {labels[0]}, predicted {trace['prediction']}): "
    f"{len(trace['t'])} records, active nodes per record {trace['active'].sum(axis=1)}"
)

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no picture")
else:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.imshow(images[0], cmap="gray")
    ax1.set_title(f"test digit 0: label {labels[0]}, predicted {trace['prediction']}")
    ax1.axis("off")
    sigma = trace["strength"][-1]
    graph = run.graph()
    ax2.plot(sigma, ".", markersize=2)
    ax2.axvline(graph["inputs"], color="grey", lw=0.5)
    ax2.axvline(graph["nodes"] - graph["outputs"], color="grey", lw=0.5)
    ax2.set_xlabel("node (inputs | hidden | outputs)")
    ax2.set_ylabel("σ after the pass")
    fig.tight_layout()
    fig.savefig("quickstart-trace.png", dpi=100)
    print("wrote quickstart-trace.png")
