#!/usr/bin/env bash
# The ablations of README "What learns": scenes/what-learns.ron (scenes/mnist-deep.ron trained
# three epochs, then evaluated with and without the hidden nodes) with one setting changed per
# row, on the real digits of scripts/fetch-mnist.sh. Prints a Markdown table: held-out accuracy
# on all 2000 test digits after 3 epochs, the same with the hidden nodes silenced at test, and
# wall seconds per training epoch. Runs go to runs/what-learns/<row>.
#
#   scripts/what-learns.sh            # every row (about half an hour on 2 cores)
#   scripts/what-learns.sh base sum   # only the named rows
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/mnist/train-images-idx3-ubyte ] || { echo "run scripts/fetch-mnist.sh first" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/neurograph

# row name | what changes | --set arguments
rows=(
  "base|the mnist-deep settings (Phasor/Strength, Replace, Grouped, Backprop, Adam, batch 32, learned encodings, 50 outputs per class, D = 5)|"
  "sum|forward.combine = Sum (additive arrivals mod N)|--set forward.combine=Sum"
  "uniform|Phasor(weight: Uniform)|--set forward.combine=Phasor(weight:Uniform)"
  "magnitude|Phasor(weight: Magnitude)|--set forward.combine=Phasor(weight:Magnitude)"
  "accumulate|forward.carry = Accumulate (eviction on, the timestep loop)|--set forward.carry=Accumulate"
  "local|training.credit = Local (SPEC 7 output and hidden credit)|--set training.credit=Local"
  "mean|loss.readout = Mean (SPEC 6 read-out)|--set loss.readout=Mean"
  "fixed-encodings|training.learn_encodings = false|--set training.learn_encodings=false"
  "sgd|training.optimizer = Sgd(lr: 300, momentum: 0.9)|--set training.optimizer=Sgd(lr:300.0,momentum:0.9)"
  "sign|training.optimizer = SignAccumulator (SPEC 7 rule), fixed encodings|--set training.optimizer=SignAccumulator --set training.learn_encodings=false"
  "online|training.batch_size = 1 (online Adam)|--set training.batch_size=1"
  "10-per-class|10 outputs per class|--set architecture.total_nodes=1090 --set architecture.output_nodes=100"
  "200-per-class|200 outputs per class|--set architecture.total_nodes=2990 --set architecture.output_nodes=2000"
  "d16|D = 16, 200 outputs per class (scenes/mnist-deep-16.ron)|--set architecture.vector_dim=16 --set architecture.total_nodes=2990 --set architecture.output_nodes=2000"
  "radiation|radiation on (top-6), trained from scratch|--set radiation.enabled=true"
  "frozen|training.freeze_hidden = true|--set training.freeze_hidden=true"
)

want=("$@")
echo "| row | change | held-out | hidden silenced at test | s / epoch | command |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r name what sets <<<"$row"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  out="runs/what-learns/$name"
  rm -rf "$out"
  # shellcheck disable=SC2086
  "$bin" run scenes/what-learns.ron $sets --out "$out" --quiet >/dev/null
  python3 - "$out/summary.json" "$name" "$what" "$sets" <<'PY'
import json, sys
summary, name, what, sets = sys.argv[1:]
s = json.load(open(summary))
held, silenced = s["evaluations"][0]["accuracy"], s["evaluations"][1]["accuracy"]
epochs = s["training"]
per_epoch = sum(e["seconds"] for e in epochs) / len(epochs)
cmd = "neurograph run scenes/what-learns.ron " + sets if sets else "neurograph run scenes/what-learns.ron"
print(f"| {name} | {what} | {100*held:.1f}% | {100*silenced:.1f}% | {per_epoch:.1f} | `{cmd.strip()}` |")
PY
done
