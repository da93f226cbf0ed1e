#!/usr/bin/env bash
# Issue "GPU budget reproduction": FOCA vs E2E on real CIFAR-10, 2 seeds each, in ONE device call.
#   bash scripts/gpu_budget.sh CIFAR10.npz        # OUT=folder for results (default results/budget-<date>)
# The arrays file comes from ../shared/data/cifar10/unpack.py; scripts/stage_cifar10.sh explains how
# to carry it to a device machine in two calls. Prints the short table last.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-results/budget-$(date +%F)}
data=${1:?usage: bash scripts/gpu_budget.sh CIFAR10.npz}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
timeout 470 $PY -m scripts.gpu_budget --data "$data" --out "$OUT" --minutes ${MINUTES:-6.5} 2> "$OUT/gpu_budget.log"
rc=$?
rm -rf "$OUT"/runs/*/checkpoint.pt  # weights stay on the machine; metrics, summaries and features come back
exit $rc
