#!/usr/bin/env bash
# The GPU run the issue's goals refer to (one H100/H200-class GPU): torch on CUDA, ONNX Runtime
# and TensorRT, batch 1, 8 and 64, three variants. Peak memory is device memory.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/gpu-d16
.venv/bin/hieramp bench --model d16 --random-init --device cuda --backends torch,onnxruntime,tensorrt \
    --batch-sizes 1,8,64 --warmup "${WARMUP:-3}" --iters "${ITERS:-10}" \
    --export-dir "${HIERAMP_BENCH_EXPORTS:-$HOME/.cache/hieramp/bench-exports}" \
    --json "$out.json" --markdown "$out.md" --plot "$out.png"
