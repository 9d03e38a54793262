#!/bin/bash
# Join the shard stores of decompose-array.sh into one store (run after the whole array succeeded).
# The merge checks that every shard comes from the same model, layers, dtype and dataset and that the
# shards are disjoint and complete, and names the missing or overlapping shard when they are not.
#
#SBATCH --job-name=cliplens-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=00:30:00
#SBATCH --output=logs/merge-%j.out

set -euo pipefail
STORES=${STORES:-/shared/stores/imagenet-vit-h14}
npx cliplens store merge "$STORES"/shard-* --out "${STORES}-merged"
