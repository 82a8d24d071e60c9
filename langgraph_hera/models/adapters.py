"""LoRA adapters of the edge model at serving time: identity, checks, and the cached merge.

Every adapter directory (written by `langgraph_hera.training.lora.train_adapter`) carries
``hera_adapter.json`` naming the base model it was trained on. `EdgeServer` serves an adapter by
merging it into the base weights once (`merge_adapter`, cached by the adapter's checksum, run in a
child process: ``python -m langgraph_hera.models.adapters merge ADAPTER --base DIR``); vLLM then
serves the merged directory like any model. `merge_adapter` refuses a different base with both
names in the message.

Example:
    >>> merged = merge_adapter("adapters/twc")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langgraph_hera.models._embedded import cache_root, embedded_model_dir
from langgraph_hera.models._embedded import convert_gguf as convert_gguf
from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

#: The metadata file of an adapter directory.
ADAPTER_META = "hera_adapter.json"
#: Format version of `ADAPTER_META`.
ADAPTER_FORMAT = 1
#: The adapter shipped for the embedded edge model (inside the package).
SHIPPED_ADAPTER = Path(__file__).resolve().parent.parent / "artifacts" / "smollm2-twx-lora"
#: The file that marks a finished merged model directory.
MERGED_MARKER = "hera-merged.json"


class AdapterError(ValueError):
    """An adapter that cannot be used: missing files, or trained on another base model."""


def model_identity(model_dir: str | Path) -> str:
    """A stable name for a base model directory: its name plus a checksum of its source.

    For a converted GGUF (the embedded model) the GGUF's sha256 is used; otherwise the
    checksum of ``config.json``.
    """
    d = Path(model_dir)
    marker = d / "hera-source.json"
    if marker.is_file():
        sha = json.loads(marker.read_text()).get("sha256", "")
        return f"{d.name}@{sha[:16]}"
    merged = d / MERGED_MARKER
    if merged.is_file():
        return str(json.loads(merged.read_text())["identity"])
    cfg = d / "config.json"
    if not cfg.is_file():
        raise AdapterError(f"{d} is not a model directory (no config.json)")
    return f"{d.name}@{hashlib.sha256(cfg.read_bytes()).hexdigest()[:16]}"


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def adapter_info(adapter_dir: str | Path) -> dict[str, Any]:
    """The metadata of an adapter directory (`ADAPTER_META`) plus its weights' checksum.

    Raises:
        AdapterError: Missing files or an unknown format.
    """
    d = Path(adapter_dir)
    meta_path = d / ADAPTER_META
    weights = d / "adapter_model.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise AdapterError(
            f"{d} is not a langgraph-hera adapter (needs {ADAPTER_META} and "
            "adapter_model.safetensors; train one with `hera adapt`)"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != ADAPTER_FORMAT:
        raise AdapterError(
            f"{meta_path}: format {meta.get('format')!r}, this version reads {ADAPTER_FORMAT}"
        )
    return {**meta, "sha256": _file_sha(weights)}


def shipped_adapter() -> Path | None:
    """The adapter shipped for the embedded edge model, if this installation has it."""
    return SHIPPED_ADAPTER if (SHIPPED_ADAPTER / ADAPTER_META).is_file() else None


def merged_dir_for(adapter_dir: str | Path, root: str | Path | None = None) -> Path:
    """Where the merged model of an adapter lives (keyed by the adapter's checksum)."""
    info = adapter_info(adapter_dir)
    base = info["base_model"].split("@")[0]
    return Path(root or cache_root()) / "models" / f"{base}+lora-{info['sha256'][:16]}"


def merge_adapter(
    adapter_dir: str | Path,
    *,
    base_dir: str | Path | None = None,
    root: str | Path | None = None,
) -> Path:
    """The base model with the adapter merged in (bf16), built once and cached.

    Args:
        adapter_dir: A directory written by `langgraph_hera.training.lora.train_adapter` (or
            the shipped adapter).
        base_dir: The base model; default: the embedded edge model.
        root: Cache root.

    Returns:
        A Hugging Face model directory vLLM can serve.

    Raises:
        AdapterError: The adapter was trained on another base model (both are named).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = adapter_info(adapter_dir)
    base = Path(base_dir) if base_dir is not None else embedded_model_dir(root=root)
    base_id = model_identity(base)
    if info["base_model"] != base_id:
        raise AdapterError(
            f"adapter {adapter_dir} was trained on base model {info['base_model']!r}, "
            f"but the base model here is {base_id!r}"
        )
    target = merged_dir_for(adapter_dir, root)
    if (target / MERGED_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        model = model.to(torch.bfloat16)
        model.save_pretrained(str(tmp), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(tmp))
        for name in ("chat_template.jinja", "chat_template.json"):
            if (base / name).is_file() and not (tmp / name).is_file():
                shutil.copy(base / name, tmp / name)
        identity = f"{base_id}+lora@{info['sha256'][:16]}"
        (tmp / MERGED_MARKER).write_text(
            json.dumps({"identity": identity, "base": str(base), "adapter": str(adapter_dir)})
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MERGED_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m langgraph_hera.models.adapters merge ADAPTER --base DIR``: the child
    process `EdgeServer` runs (``python -m langgraph_hera.adapt`` still works)."""
    import argparse

    parser = argparse.ArgumentParser(prog="langgraph_hera.models.adapters")
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge")
    merge.add_argument("adapter")
    merge.add_argument("--base", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    merge_adapter(args.adapter, base_dir=args.base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
