#!/bin/bash
# Adapt Qwen2.5-Coder-0.5B-Instruct as an edge with `hera adapt` on a GPU, then measure each
# adapter's agreement with the expert stand-in on dev states (scripts/rank_agreement.py).
#
#   GGUF=path/to/qwen2.5-coder-0.5b-instruct.gguf DATA=runs/i21 OUT=out bash scripts/adapt_qwen_gpu.sh
#
# DATA holds expert recordings (`hera record --policy always-cloud --cloud expert`):
# expert-twc-train, expert-alfworld-train (train seeds) and expert-twc-dev, expert-alfworld-dev.
# Adapters: one on both suites (twc+alfworld), one on twc alone; rank 8 on every layer, fp32,
# lr 3e-4, 250 steps of 16 (about one epoch). The shipped langgraph_hera/artifacts/qwen05-twc-alf-lora
# was trained so on one H200 (74 s). With bf16 autocast and lr 1e-3 the loss went NaN on the
# H200 (cause not separated: both were changed at once); `hera adapt` now stops on a NaN loss.
# Every step appends to $OUT/log.txt; a step that fails is logged and the next one runs.
set -u
: "${GGUF:?the Qwen GGUF file}" "${DATA:=runs/i21}" "${OUT:=runs/i21/gpu}" "${STEPS:=250}"
: "${DEVICE:=auto}" "${MAX_STATES:=600}" "${PY:=python3}"
mkdir -p "$OUT"
LOG="$OUT/log.txt"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
say "host: $(hostname)  gpu: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
BASE=$("$PY" langgraph_hera/models/_embedded.py convert "$GGUF" --root "${HERA_CACHE_DIR:-/tmp/hc}" 2>>"$LOG" | tail -1)
[ -d "$BASE" ] || BASE=$(ls -d "${HERA_CACHE_DIR:-/tmp/hc}"/models/qwen2.5-coder-0.5b-instruct-* | head -1)
say "base: $BASE"
adapt() {  # name, data dirs...
  local name=$1; shift
  local data=(); for d in "$@"; do data+=(--data "$DATA/$d"); done
  local t0=$(date +%s)
  "$PY" -m langgraph_hera.cli adapt --base "$BASE" "${data[@]}" --out "$OUT/$name" \
    --steps "$STEPS" --batch-size 16 --rank 8 --top-layers 0 --max-len 768 --save-every 100000 \
    --lr 3e-4 --bf16 off --device "$DEVICE" >>"$LOG" 2>&1
  say "adapt $name rc=$? wall_s=$(( $(date +%s) - t0 ))"
  rm -rf "$OUT/$name/checkpoint" "$OUT/$name/README.md"
}
agree() {  # adapters (comma-separated); one JSON line per adapter into the log
  "$PY" scripts/rank_agreement.py --base "$BASE" --adapter "$1" --device "$DEVICE" \
    --states "$DATA/expert-twc-dev" --states "$DATA/expert-alfworld-dev" \
    --max-states "$MAX_STATES" 2>/tmp/agree.err | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  say "agreement rc=$rc"
  [ "$rc" = 0 ] || tail -20 /tmp/agree.err | tee -a "$LOG"
}
adapt qwen05-twc-alf expert-twc-train expert-alfworld-train
agree "none,$OUT/qwen05-twc-alf"
adapt qwen05-twc expert-twc-train
agree "$OUT/qwen05-twc"
say done
