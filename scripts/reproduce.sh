#!/usr/bin/env bash
# Reproduce the adapted edge, the Hera router and the twc benchmark of docs/BENCHMARKS.md.
#
#   bash scripts/reproduce.sh            # OUT=runs/repro; every stage resumes where it stopped
#
# On 2 CPU cores this takes hours (adaptation ~1 h, recording + benchmark ~1-2 h). Stages:
#   1. expert (stand-in cloud) trajectories on twc train / dev / test seeds
#   2. hera adapt: LoRA on the train trajectories; edge-alone quality on dev and test
#   3. one edge server with that adapter (vLLM), shared by the next stages
#   4. hera record --also-edge on twc train (200) and dev (20): Hera's replay data
#   5. hera train: imitation on replay labels + ROUNDS RL rounds (default 1)
#      -> $OUT/hera-twc.npz (and the imitation-only $OUT/hera-twc-il.npz)
#   6. hera bench on the twc test fold: baselines, sweeps, Hera, oracle frontier;
#      scripts/replay_oracle.py: the oracle's share by agreement and by replayed cost
set -euo pipefail
cd "$(dirname "$0")/.."
H=.venv/bin/hera
OUT="${OUT:-runs/repro}"
ROUNDS="${ROUNDS:-1}"
TEST_EPISODES="${TEST_EPISODES:-30}"
CACHE="$OUT/proposals.sqlite"
mkdir -p "$OUT"

for fold in train:200 dev:40 test:40; do
  $H record --suite twc --fold "${fold%%:*}" --episodes "${fold##*:}" --policy always-cloud \
    --max-steps 40 --out "$OUT/expert-twc-${fold%%:*}"
done

# The shipped adapter (v4): ~50 min on 2 cores with bf16 units.
if [ ! -f "$OUT/adapter/hera_adapter.json" ]; then
  $H adapt --data "$OUT/expert-twc-train" --out "$OUT/adapter" --steps 400 --top-layers 12 \
    --rank 16 --batch-size 8 --max-len 640 --save-every 20
fi
for fold in dev test; do
  .venv/bin/python scripts/edge_quality.py --states "$OUT/expert-twc-$fold" --adapter "$OUT/adapter" \
    --decodings choice --max-states 150 --episodes 20 --out "$OUT/edge-quality-$fold.json"
done

. scripts/_edge_server.sh
serve_edge "$OUT" 600 --adapter "$OUT/adapter"   # sets URL and MODEL
# The cache is keyed by the adapter's checksum: a retrained adapter never reuses old answers.
SHA="$(.venv/bin/python -c "from langgraph_hera.adapt import adapter_info as a; print(a('$OUT/adapter')['sha256'][:16])")"
EDGE=(--edge-url "$URL" --edge-model "$MODEL" --proposal-cache "$CACHE" --cache-namespace "$SHA")

$H record --suite twc --fold train --episodes 200 --also-edge --concurrency 4 --max-steps 30 \
  "${EDGE[@]}" --out "$OUT/record-twc-train"
$H record --suite twc --fold dev --episodes 20 --also-edge --concurrency 4 --max-steps 30 \
  "${EDGE[@]}" --out "$OUT/record-twc-dev"

if [ ! -f "$OUT/hera-twc.npz" ]; then
  $H train --data "$OUT/record-twc-train" --dev-data "$OUT/record-twc-dev" \
    --target-cloud-share 0.4 --rounds "$ROUNDS" --episodes 40 --offset 200 --repeats 1 \
    --explore 0.1 --concurrency 4 --max-steps 30 --edge-id "$MODEL" --objective steps \
    "${EDGE[@]}" --out "$OUT/hera-twc.npz"
fi

POLICIES="random,threshold,hera:path=$OUT/hera-twc.npz"
[ -f "$OUT/hera-twc-il.npz" ] && POLICIES="$POLICIES,hera:path=$OUT/hera-twc-il.npz"
$H bench --suite twc --fold test --episodes "$TEST_EPISODES" --concurrency 4 --sweep \
  --policies "$POLICIES" "${EDGE[@]}" --out "$OUT/bench-twc-test"
.venv/bin/python scripts/replay_oracle.py "$OUT/bench-twc-test/always-cloud"
