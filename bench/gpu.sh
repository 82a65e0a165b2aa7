#!/usr/bin/env bash
# The throughput benchmark on a CUDA GPU, in one short run (well under 5 minutes).
#   bash bench/gpu.sh            # on the GPU machine, from the repository root
# Installs the package if needed, checks CUDA, times the training step per option set and the
# projected wall time of the tutorial's full 93,700-iteration run. Writes $OUT/gpu.md when $OUT
# is set (the device tool), else bench/gpu-latest.md. On a machine without CUDA it runs the same
# code on the CPU with a tiny budget, so the script itself stays tested.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -c "import infogan" 2>/dev/null || $PY -m pip install -q -e . >/dev/null
DEST=${OUT:-bench}/gpu$( [ -n "${OUT:-}" ] && echo "" || echo "-latest").md
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  $PY bench/gpu_bench.py --device cuda --repeats 5 --iters 50 | tee "$DEST"
else
  echo "no CUDA device: exercising the script on the CPU" >&2
  $PY bench/gpu_bench.py --device cpu --repeats 1 --iters 2 --variants "fp32 eager,bf16 autocast" | tee "$DEST"
fi
