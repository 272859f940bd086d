#!/usr/bin/env bash
# The radiation pattern-cache study of the README: hit rates during training and evaluation on
# the real digits for q = 1, 2, 4, 8, and the accuracy approximate caching costs, against the
# cache switched off. Runs scenes/mnist-production.ron (evaluate untrained, train one epoch on
# 8000 digits, evaluate on 2000) once per setting, with one evaluation world so every setting
# sees lookups in the same order. Needs the data: scripts/fetch-mnist.sh.
# Usage: scripts/cache-study.sh [OUT_DIR]   (default runs/cache-study; about 2 min per setting)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/cache-study}"
cargo build --release --quiet
bin=target/release/neurograph
common=(--set schedule.eval_replicas=1 --quiet)
run() {
  local name="$1"
  shift
  echo "== $name" >&2
  "$bin" run scenes/mnist-production.ron "${common[@]}" "$@" --out "$out/$name" >/dev/null
  "$bin" inspect scenes/mnist-production.ron --cache --run "$out/$name"
}
run off
for q in 1 2 4 8; do
  run "q$q" --set radiation.cache.enabled=true --set radiation.cache.quantization="$q"
done
# Beyond the four asked for: coarser signatures, and an exact cache big enough to keep every
# sample's entries (does anything repeat across samples?).
for q in 64 128; do
  run "q$q" --set radiation.cache.enabled=true --set radiation.cache.quantization="$q"
done
run q1-capacity-1m --set radiation.cache.enabled=true --set radiation.cache.capacity=1000000
echo "summaries: $out/*/summary.json (evaluations[].pattern_cache, training[].pattern_cache)"
