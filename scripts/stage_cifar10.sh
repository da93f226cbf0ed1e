#!/usr/bin/env bash
# Split the shared CIFAR-10 parts into two ignored folders so each fits one device call (64 MiB):
#   bash scripts/stage_cifar10.sh [DATA]          # DATA defaults to $FOCA_DATA or ../shared/data
# then, on a warm device machine:
#   call 1 (carry gpu_stage1):  ls gpu_stage1
#   call 2 (carry gpu_stage2):  python3 gpu_stage2/unpack.py /tmp/c10.npz gpu_stage1 gpu_stage2 \
#                               && bash scripts/gpu_budget.sh /tmp/c10.npz
set -eu
cd "$(dirname "$0")/.."
src=${1:-${FOCA_DATA:-../shared/data}}/cifar10
rm -rf gpu_stage1 gpu_stage2 && mkdir gpu_stage1 gpu_stage2
cp "$src"/cifar10_train_webp_p0[0-4].npz "$src"/cifar10_test_first1000_webp_p00.npz gpu_stage1/
cp "$src"/cifar10_train_webp_p0[5-9].npz "$src"/unpack.py gpu_stage2/
du -sh gpu_stage1 gpu_stage2
