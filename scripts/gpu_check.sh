#!/usr/bin/env bash
# Issue "GPU speed": every GPU check and benchmark in ONE device call of at most ~8 minutes.
#   bash scripts/gpu_check.sh             # on the GPU box (its python3 has torch); OUT=folder for results
#   PY=.venv/bin/python GPU_BENCH_ARGS=--tiny bash scripts/gpu_check.sh   # CPU smoke of this script
# Writes under $OUT: nvidia-smi.txt, pytest_gpu.txt (CUDA-only tests: CuPy backends),
# bench_data.json (batched augmentation vs torchvision DataLoader on the device), gpu_bench.json
# (WRN-28-10 / PyramidNet-272 images/s, TFLOP/s, projections). Prints the short table last.
# Copy $OUT to results/<card>-<date>/ and commit it; the README quotes it.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-results/gpu-$(date +%F)}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
start=$(date +%s)
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
timeout 100 $PY -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/pytest_gpu.txt" 2>&1
echo "CUDA-only tests: $(tail -n 1 "$OUT/pytest_gpu.txt")"
timeout 90 $PY -m toy.run --backend cupy --fast --out "$OUT/toy_cupy" > "$OUT/toy_cupy.txt" 2>&1
echo "toy demos on CuPy (fast mode): exit $? (log $OUT/toy_cupy.txt)"
timeout 60 $PY -m scripts.bench_data --seconds=3 --json="$OUT/bench_data.json" > "$OUT/bench_data.txt" 2>&1
tail -n 5 "$OUT/bench_data.txt"
left=$(( 440 - ($(date +%s) - start) ))
timeout $(( left + 20 )) $PY -m scripts.gpu_bench --out "$OUT" --budget-s $(( left - 90 )) ${GPU_BENCH_ARGS:-} 2> "$OUT/gpu_bench.log"
echo "results in $OUT ($(( $(date +%s) - start )) s)"
