#!/usr/bin/env bash
# Reproduce the adapted edge, the Hera router and the twc benchmark of docs/BENCHMARKS.md.
#
#   bash scripts/reproduce.sh            # OUT=runs/repro; every stage resumes where it stopped
#
# On 2 CPU cores this takes hours (adaptation ~1 h, recording + benchmark ~1-2 h). Stages:
#   1. expert (stand-in cloud) trajectories on train seeds of twc, cookingworld, coin
#   2. hera adapt: LoRA on those trajectories            -> $OUT/adapter
#   3. one edge server with that adapter (vLLM), shared by the next stages
#   4. hera record --also-edge on twc train (200) and dev (40): Hera's replay data
#   5. hera train: imitation (+ RL rounds if ROUNDS>0)   -> $OUT/hera-twc.npz
#   6. hera bench on the twc test fold: baselines, sweeps, Hera, oracle frontier
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/hera
OUT="${OUT:-runs/repro}"
ROUNDS="${ROUNDS:-0}"
TEST_EPISODES="${TEST_EPISODES:-30}"
CACHE="$OUT/proposals.sqlite"
mkdir -p "$OUT"

for suite in twc cookingworld coin; do
  $H record --suite "$suite" --fold train --episodes 150 --policy always-cloud \
    --max-steps 40 --out "$OUT/expert-$suite-train"
done

if [ ! -f "$OUT/adapter/hera_adapter.json" ]; then
  $H adapt --data "$OUT/expert-twc-train" --data "$OUT/expert-cookingworld-train" \
    --data "$OUT/expert-coin-train" --out "$OUT/adapter" --steps 60
fi

LOG="$OUT/serve.log"
$H serve --adapter "$OUT/adapter" > "$OUT/serve.url" 2> "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  [ -s "$OUT/serve.url" ] && break
  kill -0 $SERVER 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 1
done
URL="$(head -1 "$OUT/serve.url")"
MODEL="$(sed -n 's/^model: *//p' "$LOG" | head -1)"
# The cache is keyed by the adapter's checksum: a retrained adapter never reuses old answers.
SHA="$(.venv/bin/python -c "from langgraph_hera.adapt import adapter_info as a; print(a('$OUT/adapter')['sha256'][:16])")"
EDGE=(--edge-url "$URL" --edge-model "$MODEL" --proposal-cache "$CACHE" --cache-namespace "$SHA")

$H record --suite twc --fold train --episodes 200 --also-edge --concurrency 4 "${EDGE[@]}" \
  --out "$OUT/record-twc-train"
$H record --suite twc --fold dev --episodes 40 --also-edge --concurrency 4 "${EDGE[@]}" \
  --out "$OUT/record-twc-dev"

if [ ! -f "$OUT/hera-twc.npz" ]; then
  $H train --data "$OUT/record-twc-train" --dev-data "$OUT/record-twc-dev" \
    --target-cloud-share 0.35 --rounds "$ROUNDS" --episodes 60 --edge-id "$MODEL" \
    "${EDGE[@]}" --out "$OUT/hera-twc.npz"
fi

$H bench --suite twc --fold test --episodes "$TEST_EPISODES" --concurrency 4 --sweep \
  --policies "random,threshold,hera:path=$OUT/hera-twc.npz" "${EDGE[@]}" --out "$OUT/bench-twc-test"
