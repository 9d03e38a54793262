#!/bin/bash
# One step for a session that has a GPU: install onnxruntime's CUDA provider, then parity, the
# benchmarks, fp16's error and a 1000-image decompose on CUDA, with the GPU's name, into one log.
#
#   bash tools/gpu-check.sh [OUT_DIR]        (default: $OUT if set, else .cache/gpu-check)
#
# Needs: an NVIDIA GPU with its driver, CUDA 12 and cuDNN 9 libraries on the library path, and either
# network access to nuget.org (the install step downloads Microsoft.ML.OnnxRuntime.Gpu.Linux, about
# 300 MB) or the three provider libraries already in node_modules/onnxruntime-node/bin/napi-v6/linux/x64/.
# Everything else (random checkpoints in the hub layouts, a loopback hub, synthetic images) is made here.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-.cache/gpu-check}}
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu-check.log"
exec > >(tee "$LOG") 2>&1
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "machine"
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi failed: no GPU visible"
node --version; nproc; free -g | head -2

step "dependencies (CPU install as the README's set-up, then the CUDA provider)"
[ -d node_modules ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if [ ! -f "$ORT_BIN/libonnxruntime_providers_cuda.so" ]; then
  ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js || echo "CUDA provider install failed (no network to nuget.org?)"
fi
ls -la "$ORT_BIN"
npm run build

step "--ep cuda starts (one image through the tiny fixture model)"
node bin/cliplens.js encode --ep cuda --model test/fixtures/reference/tiny_a.safetensors \
  --pixels test/fixtures/reference/inputs_tiny_a.safetensors --out "$OUTDIR/tiny-cuda.safetensors" || { echo "CUDA unusable: stopping"; exit 1; }

step "parity on CUDA (the reference fixtures; tolerance as on the CPU)"
CLIPLENS_EP=cuda node --import tsx --test test/parity.test.ts test/cli.test.ts

step "benchmarks on CUDA (random ViT-B/16; speeds next to same-run baselines)"
CLIPLENS_EP=cuda npm run bench -- decompose
CLIPLENS_EP=cuda npm run bench -- scale --models b16,l14,h14 --batch 16 --no-path --no-reference

step "fp16 vs fp32 on CUDA, both against fp32 on the CPU (ViT-B/16, ViT-L/14)"
node --import tsx tools/hub_checkpoints.ts --out .cache/hub-src b16 l14
node --import tsx tools/hub_server.ts --root .cache/hub-src --port 18765 & HUB=$!
sleep 3
for m in laion/CLIP-ViT-B-16-laion2B-s34B-b88K laion/CLIP-ViT-L-14-laion2B-s32B-b82K; do
  CLIPLENS_HUB_ENDPOINT=http://127.0.0.1:18765 node bin/cliplens.js encode --model "hf-hub:$m" --cache-dir "$OUTDIR/cache" \
    --pixels test/fixtures/reference/inputs_tiny_a.safetensors --out /dev/null 2>/dev/null || true  # download only (pixel size differs)
  CLIPLENS_EP=cuda node --import tsx tools/gpu_check.ts fp16-error "hf-hub:$m" "$OUTDIR/cache"
done

step "1000-image decompose on CUDA (JPEG folder → store), fp32 then fp16"
node --import tsx tools/gpu_check.ts images "$OUTDIR/images" 1000
for p in fp32 fp16; do
  rm -rf "$OUTDIR/store-$p"
  /usr/bin/time -v node bin/cliplens.js decompose --ep cuda --precision $p --offline --cache-dir "$OUTDIR/cache" \
    --model hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K --dataset "$OUTDIR/images" --store "$OUTDIR/store-$p" --batch-size 32 2>&1 \
    | grep -E "store |images|Elapsed|Maximum resident" 
done
kill $HUB

step "done: copy the figures above (with the GPU's name) into the README's GPU section"
