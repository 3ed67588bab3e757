#!/usr/bin/env bash
# Usage: tools/dist_search.sh CONFIG CHECKPOINT NUM_PROCS [tools/search.py options...]
# The ranks split the candidates: each is evaluated exactly once.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
PORT=${PORT:-29500}
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nproc_per_node="$NPROC" \
    --master_port="$PORT" tools/search.py "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
