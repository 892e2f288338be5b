#!/usr/bin/env bash
# The serving benchmark on one GPU, on the single-GPU serve config's real architectures with
# weightless checkpoints (vLLM load_format: dummy): config and tokenizer files only, so no
# weights travel and no model hub is needed. Speed and memory are the real models'; answers
# are noise, so the labelled set's quality columns mean nothing here (README "Serving
# benchmarks").
#
# Needs the CUDA build: pip install -e '.[gpu]'. Extra arguments go to `tierserve bench`.
#   TOKENIZER  a Qwen2.5 checkpoint folder (all Qwen2.5 sizes share one tokenizer)
#   CONFIG     the serve config to take tiers from
#   OUT        where the report goes
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
CONFIG=${CONFIG:-serve_configs/gpu-single-80gb.yaml}
TOKENIZER=${TOKENIZER:-${TIERSERVE_MODEL_CACHE:-$HOME/.cache/tierserve/models}/qwen2.5-coder-0.5b-instruct/fp32}
OUT=${OUT:-benchmarks/results/serving_gpu}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$BIN/python" -m tierserve.bench.dummy_models "$CONFIG" --tokenizer "$TOKENIZER" --out "$WORK"
"$BIN/tierserve" bench "$WORK/serve_config.yaml" --out "$OUT" --direct-tier small \
    --concurrency 1,4,16,64,128 --rate 4,16 --labelled-concurrency 16 \
    --input-len 512 --output-len 128 --min-prompts 64 \
    --slo-ttft-ms 500 --slo-tpot-ms 50 "$@"
