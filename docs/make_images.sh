#!/usr/bin/env bash
# Regenerates the README pictures in docs/images from a fresh run:
# lenet with the fast preset for 2 epochs (about 1 minute on 2 idle cores, 3 on busy ones).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
mnistctl train --preset fast --arch lenet --epochs 2 --log-layers --name lenet-fast --runs-dir "$runs" --quiet
mnistctl eval lenet-fast --runs-dir "$runs"
mnistctl visualize lenet-fast --runs-dir "$runs" --what all  # into the run's plots/, then over the old pictures
cp "$runs"/lenet-fast/plots/*.png docs/images/
