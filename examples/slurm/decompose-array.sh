#!/bin/bash
# Decompose one dataset on many machines with a Slurm job array: one shard per array task, each
# writing its own store on a shared filesystem; a dependent job merges them.
#
#   sbatch examples/slurm/decompose-array.sh                      # the array (16 tasks, see --array)
#   sbatch --dependency=afterok:<array job id> examples/slurm/merge.sh
#
# Every task sees the same dataset, in the same order (cliplens sorts it), and takes the contiguous
# slice of batches `--shard K/N` names, so the shards are disjoint and together cover the dataset.
# A task that dies (preempted, out of time) is simply resubmitted: its store resumes at the first
# batch it had not finished (`sbatch --array=<K> ...` reruns shard K alone).
#
#SBATCH --job-name=cliplens-decompose
#SBATCH --array=0-15
#SBATCH --cpus-per-task=16
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=logs/decompose-%A_%a.out

set -euo pipefail

# Edit these for your cluster. All of them must be on a filesystem every node mounts.
MODEL=${MODEL:-hf-hub:laion/CLIP-ViT-H-14-laion2B-s32B-b79K}
DATASET=${DATASET:-/shared/datasets/imagenet/val}      # folder, list file or CSV
STORES=${STORES:-/shared/stores/imagenet-vit-h14}      # one sub-directory per shard
export CLIPLENS_CACHE=${CLIPLENS_CACHE:-/shared/cache/cliplens/hub}   # downloaded once, then shared

# Shards count from 0; this works for --array=0-15 and --array=1-16 alike.
K=$(( SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN ))
N=${SLURM_ARRAY_TASK_COUNT}
mkdir -p "$STORES"

# The first task to reach the hub downloads the checkpoint; the others wait on the cache's lock.
npx cliplens decompose --model "$MODEL" --dataset "$DATASET" --layers last:4 \
  --threads "${SLURM_CPUS_PER_TASK}" --batch-size 16 \
  --shard "$K/$N" --store "$STORES/shard-$(printf %04d "$K")"
