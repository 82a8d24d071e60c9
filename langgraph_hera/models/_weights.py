"""The weights `EdgeServer` serves: the one-time preparation (GGUF -> safetensors for vLLM, an
adapter merged into its base) and the served model's size and KV-cache shape.

`model_shape` reads what describes the edge (parameter count N for the energy estimate, layers x
KV heads x head dimension for the KV-cache estimate) from the served weights themselves: a
Hugging Face directory's ``config.json`` (N from the safetensors headers when present, else from
the config), or a GGUF's metadata and tensor table (``gguf.GGUFReader``, memory-mapped: only
headers are read).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph_hera.models import _embedded
from langgraph_hera.models._embedded import EdgeServerError
from langgraph_hera.models._launch import merge_command
from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class ModelShape:
    """What the edge estimates need to know about the served model.

    Attributes:
        n_params: Parameters N a token passes through (edge energy, E = 2N(n_p + n_d)/eta):
            every stored weight, except that the token-embedding table (a lookup, no
            arithmetic) is not counted when the output matrix is stored apart from it. A tied
            model counts its one embedding matrix (it is the output matrix), so a tied model
            and its untied copy (a converted GGUF: Qwen2.5-0.5B stores 630.2M weights) both
            count 494.0M.
        n_layers: Transformer layers L.
        n_kv_heads: Key/value heads H_kv.
        head_dim: Head dimension d_h.
        architecture: The config's ``model_type`` / GGUF ``general.architecture``.
    """

    n_params: float
    n_layers: int
    n_kv_heads: int
    head_dim: int
    architecture: str = ""

    @property
    def kv_dims(self) -> tuple[int, int, int]:
        """``(n_layers, n_kv_heads, head_dim)``, the arguments of `kv_cache_bytes`."""
        return (self.n_layers, self.n_kv_heads, self.head_dim)

    def describe(self) -> str:
        """``"134.5M params, 30 layers x 3 KV heads x 64"``."""
        return (
            f"{self.n_params / 1e6:.1f}M params, {self.n_layers} layers x "
            f"{self.n_kv_heads} KV heads x {self.head_dim}"
        )


def model_shape(path: str | os.PathLike[str]) -> ModelShape:
    """The size and KV shape of the weights at ``path`` (a model directory or a ``.gguf``).

    Raises:
        ValueError: ``path`` has no readable ``config.json`` / GGUF metadata, or they lack the
            layer and head counts (the message names the missing keys).
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".gguf":
        return _gguf_shape(p)
    config_path = p / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"cannot read the model's shape: {p} is neither a .gguf nor has config.json"
        )
    config = json.loads(config_path.read_text())
    config = config.get("text_config", config)  # multimodal configs nest the language model
    shape = _config_shape(config, source=str(config_path))
    counted = _safetensors_params(p)
    return shape if counted is None else _replace_params(shape, float(counted))


def _replace_params(shape: ModelShape, n_params: float) -> ModelShape:
    return ModelShape(
        n_params, shape.n_layers, shape.n_kv_heads, shape.head_dim, shape.architecture
    )


def _config_shape(config: Mapping[str, Any], *, source: str) -> ModelShape:
    needed = ("num_hidden_layers", "num_attention_heads", "hidden_size")
    missing = [k for k in needed if k not in config]
    if missing:
        raise ValueError(f"{source} lacks {missing}; needed for the edge's size and KV shape")
    layers, heads, hidden = (int(config[k]) for k in needed)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    inter = int(config.get("intermediate_size") or 4 * hidden)
    vocab = int(config.get("vocab_size") or 0)
    # A Llama-style decoder: attention (q, k, v, o), gated MLP (3 matrices), two norms per layer.
    per_layer = hidden * head_dim * (2 * heads + 2 * kv_heads) + 3 * hidden * inter + 2 * hidden
    embeddings = vocab * hidden  # the output matrix; the lookup table is not counted (n_params)
    n_params = layers * per_layer + embeddings + hidden
    return ModelShape(
        float(n_params), layers, kv_heads, head_dim, str(config.get("model_type", ""))
    )


def _safetensors_params(model_dir: Path) -> int | None:
    """Parameter count from the safetensors headers (no tensor data is read), the embedding
    table left out when ``lm_head`` is stored apart (see `ModelShape.n_params`)."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    sizes: dict[str, int] = {}
    for f in files:
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        sizes.update({k: math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__"})
    embed = [n for k, n in sizes.items() if k.endswith("embed_tokens.weight")]
    untied = any(k == "lm_head.weight" or k.endswith(".lm_head.weight") for k in sizes)
    return sum(sizes.values()) - (embed[0] if embed and untied else 0)


def _gguf_shape(path: Path) -> ModelShape:
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - gguf comes with the llama.cpp / vLLM extras
        raise ValueError(f"reading {path.name}'s shape needs the gguf package") from exc
    reader = GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    arch = str(value("general.architecture") or "llama")
    keys = {
        "layers": f"{arch}.block_count",
        "heads": f"{arch}.attention.head_count",
        "hidden": f"{arch}.embedding_length",
    }
    got = {name: value(key) for name, key in keys.items()}
    missing = [keys[n] for n, v in got.items() if v is None]
    if missing:
        raise ValueError(f"{path.name} lacks {missing}; needed for the edge's size and KV shape")
    heads = int(got["heads"])
    kv_heads = int(value(f"{arch}.attention.head_count_kv") or heads)
    head_dim = int(value(f"{arch}.attention.key_length") or int(got["hidden"]) // heads)
    sizes = {t.name: int(t.n_elements) for t in reader.tensors}
    untied = "output.weight" in sizes and "token_embd.weight" in sizes
    n_params = sum(sizes.values()) - (sizes["token_embd.weight"] if untied else 0)
    return ModelShape(float(n_params), int(got["layers"]), kv_heads, head_dim, arch)


def model_for_backend(backend: str, model: Path | None) -> Path | None:
    """``model``, or for llama.cpp the one ``.gguf`` in a model directory."""
    if backend == "llamacpp" and model is not None and model.is_dir():
        ggufs = sorted(model.glob("*.gguf"))
        if len(ggufs) != 1:
            raise ValueError(
                f"llama.cpp serves a .gguf file; {model} is a directory with "
                f"{len(ggufs)} .gguf files (give the file, or use backend='vllm')"
            )
        return ggufs[0]
    return model


def resolve_adapter(
    adapter: str | os.PathLike[str] | None, backend: str, model: Path | None
) -> Path | None:
    """The adapter directory to merge and serve, or ``None`` (see `EdgeServer`'s ``adapter``)."""
    from langgraph_hera.models import adapters as adapt

    if adapter is None:
        return None
    if str(adapter) == "auto":
        if model is None and backend == "vllm":
            return adapt.shipped_adapter()
        return None
    path = Path(adapter).expanduser().resolve()
    adapt.adapter_info(path)  # raises AdapterError with the reason
    if backend != "vllm":
        raise EdgeServerError(
            "LoRA adapters are served through vLLM (merged weights); serving one with "
            "llama.cpp would need a GGUF export of the merged model, which is not supported: "
            "use backend='vllm', or adapter=None for the raw model"
        )
    return path


def prepare_base(
    backend: Literal["vllm", "llamacpp"],
    model: Path | None,
    *,
    convert_missing: list[str],
    python: str,
    run_child: Callable[[list[str]], int],
    log_note: Callable[[], str],
) -> Path:
    """The base weights the backend loads: the GGUF for llama.cpp; for vLLM a model directory
    (a GGUF converted once in a child interpreter, then cached)."""
    if backend == "llamacpp":
        return model if model is not None else _embedded.embedded_gguf_path()
    gguf = model if model is not None else _embedded.embedded_gguf_path()
    if gguf.is_dir():
        if not (gguf / "config.json").is_file():
            logger.warning("%s has no config.json; vLLM may not load it", gguf)
        return gguf
    target = _embedded.converted_dir_for(gguf)
    if _embedded.is_converted(target):
        return target
    if convert_missing:
        raise EdgeServerError(
            f"converting {gguf.name} for vLLM needs {', '.join(convert_missing)} "
            f"in {python}: pip install transformers gguf accelerate"
        )
    logger.info("converting %s for vLLM (one time, ~20-30 s) into %s", gguf, target)
    returncode = run_child(
        [_embedded.__file__, "convert", str(gguf), "--root", str(_embedded.cache_root())]
    )
    if returncode != 0 or not _embedded.is_converted(target):
        raise EdgeServerError(
            f"converting {gguf} for vLLM failed (exit {returncode}); {log_note()}"
        )
    return target


def prepare_served(
    base: Path,
    adapter: Path | None,
    *,
    run_child: Callable[[list[str]], int],
    log_note: Callable[[], str],
) -> tuple[Path, str]:
    """``(weights to serve, their identity)``: ``base``, or ``adapter`` merged into it (once)."""
    from langgraph_hera.models import adapters as adapt

    if adapter is None:
        try:
            return base, adapt.model_identity(base)
        except adapt.AdapterError:
            return base, str(base)
    merged = adapt.merged_dir_for(adapter)
    if not (merged / "hera-merged.json").is_file():
        logger.info("merging adapter %s into %s (one time)", adapter, base)
        returncode = run_child(merge_command(adapter, base))
        if returncode != 0 or not (merged / "hera-merged.json").is_file():
            raise EdgeServerError(
                f"merging adapter {adapter} into {base} failed (exit {returncode}); {log_note()}"
            )
    return merged, adapt.model_identity(merged)
