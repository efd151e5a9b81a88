#!/usr/bin/env bash
# The recorded CPU run: the d16 architecture with random weights, torch against ONNX Runtime
# (its column reads "unavailable" where the backend or the export is missing), three variants.
# BATCH_SIZES, ITERS and WARMUP override the defaults; on a 2-core CPU one d16 image takes
# tens of seconds, so batch 8 adds a long time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/cpu-d16
.venv/bin/hieramp bench --model d16 --random-init --backends torch,onnxruntime \
    --batch-sizes "${BATCH_SIZES:-1,8}" --warmup "${WARMUP:-1}" --iters "${ITERS:-3}" \
    --export-dir "${HIERAMP_BENCH_EXPORTS:-$HOME/.cache/hieramp/bench-exports}" \
    --json "$out.json" --markdown "$out.md" --plot "$out.png"
