#!/usr/bin/env bash
# Data-parallel speed check (docs/distributed.md, "Measurement"): TSM-R50
# 8x224 training, global batch 2, 6 steps, one process with GOMAXPROCS=2
# against `mpirun -np 2` with one thread per rank, alternated ROUNDS times.
# Run it on a quiet machine (check `uptime` first) after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OPENBLAS_NUM_THREADS=1 ZOO_OFFLINE=1
args=(run TSM train --batch_size 2 --epoch 1 --valid_interval 0 --log_interval 1
  --set MODEL.num_layers=50 --set MODEL.base_width=64
  --set TRAIN.short_size=256 --set TRAIN.target_size=224 --set VALID.short_size=256 --set VALID.target_size=224
  --set SYNTHETIC.train_videos=12 --set TRAIN.total_videos=12)
for round in $(seq "${ROUNDS:-3}"); do
  d=$(mktemp -d)
  echo "== round $round: one process, GOMAXPROCS=2; $(uptime)"
  GOMAXPROCS=2 bin/zoo "${args[@]}" --save_dir "$d" 2>&1 | grep -E "training finished|zoo:" || true
  rm -rf "$d"; d=$(mktemp -d)
  echo "== round $round: mpirun -np 2, GOMAXPROCS=1 each; $(uptime)"
  mpirun -np 2 -x GOMAXPROCS=1 -x OPENBLAS_NUM_THREADS=1 -x ZOO_OFFLINE=1 bin/zoo "${args[@]}" --save_dir "$d" 2>&1 | grep -E "training finished|zoo:" || true
  rm -rf "$d"
done
