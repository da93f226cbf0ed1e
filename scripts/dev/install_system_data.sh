#!/usr/bin/env bash
# Debian data packages the tests read. Idempotent; never fails the set-up when apt is unavailable
# (the tests that need the data then skip and say why).
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
    || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"
else
  echo "note: Fashion-MNIST missing ($dir); as root: apt-get install dataset-fashion-mnist"
fi
exit 0
