"""An on-disk LangChain cache for edge proposals, shared by replay, RL rollouts and benchmarks.

`ProposalCache` is a `langchain_core.caches.BaseCache` backed by SQLite (WAL mode), so the edge's
answer for a given (model, adapter, prompt, decoding settings) is computed once and reused by every
process that opens the same file. Attach it to a chat model with ``cache=`` (or globally with
``langchain_core.globals.set_llm_cache``)::

    cache = ProposalCache("~/.cache/langgraph-hera/proposals.sqlite", namespace=adapter_sha256)
    llm = edge_chat_model(server.base_url, server.model_name, cache=cache)

The key is LangChain's own ``(prompt, llm_string)`` pair: the prompt is the serialized message
list and the llm_string holds the model class, model name, constructor decoding settings
(temperature, max_tokens, ...) and every call-time / bound kwarg (``extra_body``, ``logprobs``,
``stop``, tools, ...). Transport-only settings (base URL, API key, timeouts, retries) are dropped
from the llm_string, so a server restarted on another port still hits; ``namespace`` is mixed in
to separate entries whose served model name is the same (e.g. one per LoRA adapter checksum).

Cached answers come back with their ``usage_metadata`` and ``response_metadata`` (logprobs
included), a fresh message id, and ``response_metadata["hera_cache_hit"] = True`` so cost
accounting can count them as free.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from langgraph_hera.accounting._markers import CACHE_HIT_KEY, is_cache_hit, mark_cache_hit
from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

__all__ = [
    "CACHE_HIT_KEY",
    "DEFAULT_IGNORED_PARAMS",
    "ProposalCache",
    "ProposalCacheError",
    "is_cache_hit",
]

DEFAULT_IGNORED_PARAMS: frozenset[str] = frozenset(
    {
        # Where and how the request is sent, not what is generated.
        "openai_api_base",
        "base_url",
        "openai_api_key",
        "api_key",
        "openai_organization",
        "organization",
        "openai_proxy",
        "request_timeout",
        "timeout",
        "max_retries",
        "default_headers",
        "default_query",
        "http_client",
        "http_async_client",
        # LangChain bookkeeping.
        "cache",
        "callbacks",
        "verbose",
        "tags",
        "metadata",
        "rate_limiter",
    }
)
"""Constructor fields dropped from a serialized model's llm_string before keying."""

_KEY_FORMAT = "hera-proposal-cache/1"
_VALUE_FORMAT = 1
_SCHEMA_VERSION = 1
_TABLE = "proposals"
_COLUMNS = ("key", "namespace", "value", "created_at")


class ProposalCacheError(RuntimeError):
    """The cache file cannot be created, opened or used (the message names the file)."""


class ProposalCache(BaseCache):
    """A SQLite-backed LangChain cache, safe for several threads and processes at once.

    Each thread (and each process: connections are never carried across ``fork``) uses its own
    connection; the database runs in WAL mode with a busy timeout, so readers never block and
    concurrent writers queue. The first answer written for a key wins, so every later reader
    sees the same proposal. The instance pickles (for ``spawn`` workers) by path and settings.

    Args:
        path: The SQLite file; its directory is created when missing. ``~`` is expanded.
        namespace: Mixed into every key, e.g. the LoRA adapter id or checksum, so entries made
            with one adapter are never served for another under the same served model name.
        ignore_params: Constructor fields dropped from a serialized model's llm_string (see
            `DEFAULT_IGNORED_PARAMS`); pass ``()`` to key on the full llm_string.
        timeout: Seconds to wait for another writer's lock before giving up.

    Raises:
        ProposalCacheError: The directory cannot be created, or the file is not a (compatible)
            SQLite proposal cache. A corrupt file is left untouched.

    Example:
        >>> cache = ProposalCache(tmp_path / "proposals.sqlite", namespace="adapter-1")
        >>> llm = ChatOpenAI(model="edge", base_url=url, cache=cache)
        >>> cache.stats()["hit_rate"]
        0.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        namespace: str = "",
        ignore_params: Iterable[str] = DEFAULT_IGNORED_PARAMS,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.path = Path(path).expanduser().absolute()
        self.namespace = namespace
        self.ignore_params = frozenset(ignore_params)
        self.timeout = float(timeout)
        self._setup_runtime()
        if self.path.is_dir():
            raise ProposalCacheError(f"Proposal cache path {str(self.path)!r} is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProposalCacheError(
                f"Cannot create the directory {str(self.path.parent)!r} for the proposal cache "
                f"{str(self.path)!r}: {exc}"
            ) from exc
        self._conn()  # Open now so a bad file fails here, not at the first model call.

    # -- runtime state (per process) --------------------------------------------------------

    def _setup_runtime(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._ready_pid: int | None = None
        self._lookups = 0
        self._hits = 0
        self._writes = 0

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "namespace": self.namespace,
            "ignore_params": self.ignore_params,
            "timeout": self.timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup_runtime()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r}, namespace={self.namespace!r})"

    def __enter__(self) -> ProposalCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's connections (a later call reopens them)."""
        pid = os.getpid()
        with self._lock:
            mine = [conn for owner, conn in self._conns if owner == pid]
            self._conns = [(owner, conn) for owner, conn in self._conns if owner != pid]
            self._ready_pid = None
        self._local = threading.local()
        for conn in mine:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                logger.debug("Closing a proposal-cache connection failed", exc_info=True)

    # -- SQLite plumbing --------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> ProposalCacheError:
        if not isinstance(exc, sqlite3.OperationalError) and isinstance(exc, sqlite3.DatabaseError):
            return ProposalCacheError(
                f"The proposal cache {str(self.path)!r} is not a valid SQLite database or is "
                f"corrupt ({exc}) while trying to {action}. It was left untouched: move or "
                "delete it to start a fresh cache."
            )
        return ProposalCacheError(f"Cannot {action} the proposal cache {str(self.path)!r}: {exc}")

    def _conn(self) -> sqlite3.Connection:
        pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == pid:
            return conn
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            self._retry(lambda: self._configure(conn), "open")
            if self._ready_pid != pid:
                self._retry(lambda: self._ensure_schema(conn), "initialize")
                self._ready_pid = pid
        except BaseException:
            conn.close()
            raise
        self._local.conn, self._local.pid = conn, pid
        with self._lock:
            self._conns.append((pid, conn))
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning(
                "Proposal cache %s runs in journal mode %r, not WAL; concurrent use is slower",
                self.path,
                mode,
            )
        conn.execute("PRAGMA synchronous = NORMAL")

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # outside the try: nothing to roll back if it fails
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
            if version > _SCHEMA_VERSION:
                raise ProposalCacheError(
                    f"The proposal cache {str(self.path)!r} has schema version {version}, newer "
                    f"than this langgraph-hera supports ({_SCHEMA_VERSION})"
                )
            if version == 0 and tables - {_TABLE}:
                raise ProposalCacheError(
                    f"{str(self.path)!r} is a SQLite database of something else (tables: "
                    f"{', '.join(sorted(tables))}), not a proposal cache; not touching it"
                )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (key TEXT PRIMARY KEY, "
                "namespace TEXT NOT NULL, value TEXT NOT NULL, created_at REAL NOT NULL) "
                "WITHOUT ROWID"
            )
            columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({_TABLE})"))
            if columns != _COLUMNS:
                raise ProposalCacheError(
                    f"The proposal cache {str(self.path)!r} has an unexpected {_TABLE!r} table "
                    f"(columns {columns}, expected {_COLUMNS})"
                )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {_TABLE}_namespace ON {_TABLE}(namespace)")
            if version != _SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _retry(self, fn: Any, action: str) -> Any:
        """Run ``fn``, retrying while SQLite reports the database busy (beyond its own handler)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" in text or "busy" in text) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                raise self._error(exc, action) from exc
            except sqlite3.Error as exc:
                raise self._error(exc, action) from exc

    def _execute(self, sql: str, params: Sequence[Any] = (), action: str = "read") -> list[Any]:
        conn = self._conn()
        return self._retry(lambda: conn.execute(sql, params).fetchall(), action)

    # -- keys and values --------------------------------------------------------------------

    def normalize_llm_string(self, llm_string: str) -> str:
        """``llm_string`` with the `ignore_params` fields removed from its serialized model.

        LangChain builds the llm_string of a serializable chat model as
        ``json.dumps(serialized_model, sort_keys=True) + "---" + str(sorted(call_kwargs))``.
        Other shapes are returned unchanged.

        Args:
            llm_string: The llm_string LangChain passes to `lookup` / `update`.

        Returns:
            The llm_string used for keying.
        """
        if not self.ignore_params or not llm_string.startswith("{"):
            return llm_string
        try:
            serialized, end = json.JSONDecoder().raw_decode(llm_string)
        except ValueError:
            return llm_string
        kwargs = serialized.get("kwargs") if isinstance(serialized, dict) else None
        if not isinstance(kwargs, dict) or not llm_string.startswith("---", end):
            return llm_string
        serialized = {
            **serialized,
            "kwargs": {k: v for k, v in kwargs.items() if k not in self.ignore_params},
        }
        return json.dumps(serialized, sort_keys=True) + llm_string[end:]

    def key(self, prompt: str, llm_string: str) -> str:
        """The row key: a SHA-256 over format, namespace, normalized llm_string and prompt.

        Args:
            prompt: The serialized prompt LangChain passes to `lookup` / `update`.
            llm_string: The model / decoding-settings string LangChain passes alongside.

        Returns:
            A hex digest.
        """
        digest = hashlib.sha256()
        for part in (_KEY_FORMAT, self.namespace, self.normalize_llm_string(llm_string), prompt):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    @staticmethod
    def _encode(generations: RETURN_VAL_TYPE) -> str:
        items: list[dict[str, Any]] = []
        for gen in generations:
            info = {k: v for k, v in (gen.generation_info or {}).items() if k != CACHE_HIT_KEY}
            if isinstance(gen, ChatGeneration):
                metadata = {
                    k: v for k, v in gen.message.response_metadata.items() if k != CACHE_HIT_KEY
                }
                message = gen.message.model_copy(update={"id": None, "response_metadata": metadata})
                items.append(
                    {"kind": "chat", "message": message_to_dict(message), "generation_info": info}
                )
            else:
                items.append({"kind": "text", "text": gen.text, "generation_info": info})
        return json.dumps({"format": _VALUE_FORMAT, "generations": items}, ensure_ascii=False)

    @staticmethod
    def _decode(value: str) -> list[Generation]:
        data = json.loads(value)
        if data.get("format") != _VALUE_FORMAT:
            raise ValueError(f"unknown value format {data.get('format')!r}")
        generations: list[Generation] = []
        for item in data["generations"]:
            info = {**(item.get("generation_info") or {}), CACHE_HIT_KEY: True}
            if item["kind"] == "chat":
                (message,) = messages_from_dict([item["message"]])
                message.id = f"hera-cache-{uuid.uuid4()}"
                mark_cache_hit(message)
                generations.append(ChatGeneration(message=message, generation_info=info))
            elif item["kind"] == "text":
                generations.append(Generation(text=item["text"], generation_info=info))
            else:
                raise ValueError(f"unknown generation kind {item['kind']!r}")
        return generations

    # -- BaseCache ----------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for ``(prompt, llm_string)`` in this namespace, or None.

        Args:
            prompt: The serialized prompt.
            llm_string: The model / decoding-settings string.

        Returns:
            Fresh copies of the cached generations, marked with ``hera_cache_hit``; None on a
            miss.
        """
        key = self.key(prompt, llm_string)
        rows = self._execute(f"SELECT value FROM {_TABLE} WHERE key = ?", (key,))
        generations: list[Generation] | None = None
        if rows:
            try:
                generations = self._decode(rows[0][0])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                logger.warning(
                    "Dropping an unreadable entry %s of proposal cache %s (%s)", key, self.path, exc
                )
                self._execute(f"DELETE FROM {_TABLE} WHERE key = ?", (key,), "write")
        with self._lock:
            self._lookups += 1
            self._hits += generations is not None
        return generations

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store ``return_val`` for ``(prompt, llm_string)`` unless an entry exists already.

        The first writer wins, so concurrent rollouts all reuse the same proposal. An answer
        that cannot be stored as JSON is logged and skipped.

        Args:
            prompt: The serialized prompt.
            llm_string: The model / decoding-settings string.
            return_val: The generations to cache.
        """
        try:
            value = self._encode(return_val)
        except (TypeError, ValueError) as exc:
            logger.warning("Not caching an answer proposal cache %s cannot store: %s", self, exc)
            return
        conn = self._conn()
        row = (self.key(prompt, llm_string), self.namespace, value, time.time())
        inserted = self._retry(
            lambda: (
                conn.execute(
                    f"INSERT OR IGNORE INTO {_TABLE} (key, namespace, value, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    row,
                ).rowcount
            ),
            "write",
        )
        with self._lock:
            self._writes += max(int(inserted), 0)

    def clear(self, *, all_namespaces: bool = False, **kwargs: Any) -> None:
        """Delete this namespace's entries (every entry with ``all_namespaces=True``).

        Args:
            all_namespaces: Also delete other namespaces' entries.
            **kwargs: Accepted for `BaseCache` compatibility; unused.
        """
        if all_namespaces:
            self._execute(f"DELETE FROM {_TABLE}", (), "write")
        else:
            self._execute(f"DELETE FROM {_TABLE} WHERE namespace = ?", (self.namespace,), "write")

    # -- stats ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        rows = self._execute(
            f"SELECT COUNT(*) FROM {_TABLE} WHERE namespace = ?", (self.namespace,)
        )
        return int(rows[0][0])

    def stats(self) -> dict[str, Any]:
        """This process's lookup counts and the namespace's stored entries.

        Returns:
            ``lookups``, ``hits``, ``misses``, ``hit_rate`` (0.0 before any lookup) and
            ``writes`` (new entries stored) for this instance in this process, and ``entries``
            stored in its namespace (by every process).
        """
        with self._lock:
            lookups, hits, writes = self._lookups, self._hits, self._writes
        return {
            "lookups": lookups,
            "hits": hits,
            "misses": lookups - hits,
            "hit_rate": hits / lookups if lookups else 0.0,
            "writes": writes,
            "entries": len(self),
        }

    def reset_stats(self) -> None:
        """Zero this process's counters (stored entries are kept)."""
        with self._lock:
            self._lookups = self._hits = self._writes = 0
