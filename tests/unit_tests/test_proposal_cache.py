"""The on-disk proposal cache, exercised through a real `ChatOpenAI` and a fake OpenAI server."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from langgraph_hera.models.cache import (
    CACHE_HIT_KEY,
    ProposalCache,
    ProposalCacheError,
    is_cache_hit,
)

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens: a call that reaches the network fails
USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


class FakeOpenAI:
    """A minimal OpenAI-compatible ``/v1/chat/completions`` server that counts its requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                choices = (body.get("structured_outputs") or {}).get("choice")
                content = choices[0] if choices else f"answer-{len(server.requests)}"
                logprobs = None
                if body.get("logprobs"):
                    token = {"token": content, "logprob": -0.25, "bytes": None, "top_logprobs": []}
                    logprobs = {"content": [token]}
                payload = json.dumps(
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                                "logprobs": logprobs,
                            }
                        ],
                        "usage": USAGE,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "proposals.sqlite"


def chat(url: str, cache: ProposalCache | None = None, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    params: dict[str, Any] = {"model": "edge", "temperature": 0.0, "max_tokens": 8, "timeout": 5}
    params["max_retries"] = 0
    params.update(kwargs)
    return ChatOpenAI(base_url=url, api_key="sk-test", cache=cache, **params)


def choice(*options: str) -> dict[str, Any]:
    return {"extra_body": {"structured_outputs": {"choice": list(options)}}, "logprobs": True}


def test_second_identical_call_is_served_from_cache(server: FakeOpenAI, db: Path) -> None:
    cache = ProposalCache(db, namespace="adapter-a")
    llm = chat(server.url, cache).bind(**choice("north", "south"))

    first = llm.invoke("Which way?")
    second = llm.invoke("Which way?")

    assert len(server.requests) == 1
    assert server.requests[0]["logprobs"] is True
    assert server.requests[0]["structured_outputs"] == {"choice": ["north", "south"]}
    assert first.content == second.content == "north"
    assert not is_cache_hit(first)
    assert is_cache_hit(second) and second.response_metadata[CACHE_HIT_KEY] is True
    assert second.id and second.id != first.id
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        assert second.usage_metadata[key] == first.usage_metadata[key]
    assert second.usage_metadata["input_tokens"] == 11
    assert second.response_metadata["logprobs"] == first.response_metadata["logprobs"]
    assert second.response_metadata["logprobs"]["content"][0]["logprob"] == -0.25
    assert second.response_metadata["token_usage"] == first.response_metadata["token_usage"]
    assert second.response_metadata["model_name"] == "edge"
    assert cache.stats() == {
        "lookups": 2,
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
        "writes": 1,
        "entries": 1,
    }


def test_decoding_settings_adapter_and_prompt_are_part_of_the_key(
    server: FakeOpenAI, db: Path
) -> None:
    cache = ProposalCache(db, namespace="adapter-a")
    chat(server.url, cache).bind(**choice("a", "b")).invoke("q")
    assert len(server.requests) == 1

    misses = [
        chat(server.url, cache).bind(**choice("b", "a")),  # another choice list
        chat(server.url, cache).bind(**choice("a", "b", "c")),
        chat(server.url, cache, temperature=0.7).bind(**choice("a", "b")),
        chat(server.url, cache, max_tokens=9).bind(**choice("a", "b")),
        chat(server.url, cache).bind(extra_body=choice("a", "b")["extra_body"]),  # no logprobs
        chat(server.url, cache, model="other").bind(**choice("a", "b")),
        chat(server.url, ProposalCache(db, namespace="adapter-b")).bind(**choice("a", "b")),
    ]
    for n, llm in enumerate(misses, start=2):
        llm.invoke("q")
        assert len(server.requests) == n, f"miss #{n - 1} was served from the cache"
    chat(server.url, cache).bind(**choice("a", "b")).invoke("another prompt")
    assert len(server.requests) == len(misses) + 2

    # Every one of those is now a hit.
    for llm in misses:
        assert is_cache_hit(llm.invoke("q"))
    assert len(server.requests) == len(misses) + 2


def test_hits_survive_a_new_server_address_and_a_new_process_view(
    server: FakeOpenAI, db: Path
) -> None:
    chat(server.url, ProposalCache(db)).bind(**choice("x", "y")).invoke("q")

    # Another port, timeout and retry count (a restarted EdgeServer) and a fresh instance: a hit.
    reopened = ProposalCache(db)
    hit = chat(DEAD_URL, reopened, timeout=1, max_retries=3).bind(**choice("x", "y")).invoke("q")
    assert hit.content == "x" and is_cache_hit(hit)
    assert reopened.stats()["hit_rate"] == 1.0

    # With nothing ignored, the address is part of the key again.
    strict = ProposalCache(db, ignore_params=())
    assert strict.key("q", _llm_string(server.url)) != strict.key("q", _llm_string(DEAD_URL))
    assert reopened.key("q", _llm_string(server.url)) == reopened.key("q", _llm_string(DEAD_URL))
    assert len(server.requests) == 1


def _llm_string(url: str) -> str:
    return chat(url)._get_llm_string(**choice("x"))


def test_llm_string_carries_bound_kwargs() -> None:
    llm = chat(DEAD_URL)
    one = llm._get_llm_string(**choice("a", "b"))
    two = llm._get_llm_string(**choice("a", "c"))
    assert "'choice': ['a', 'b']" in one and "('logprobs', True)" in one
    assert one != two
    assert (
        '"temperature": 0.0' in one and '"max_tokens": 8' in one and '"model_name": "edge"' in one
    )


def test_edge_chat_model_takes_the_cache(server: FakeOpenAI, db: Path) -> None:
    from langgraph_hera.models import edge_chat_model

    cache = ProposalCache(db, namespace="lora-sha256:abc")
    edge = edge_chat_model(server.url, "edge", cache=cache, max_retries=0)
    assert edge.invoke("hi").content == edge.invoke("hi").content
    assert len(server.requests) == 1 and cache.stats()["hits"] == 1


async def test_async_calls_use_the_cache(server: FakeOpenAI, db: Path) -> None:
    cache = ProposalCache(db)
    llm = chat(server.url, cache).bind(**choice("left", "right"))
    first = await llm.ainvoke("go")
    second = await llm.ainvoke("go")
    assert len(server.requests) == 1
    assert is_cache_hit(second) and second.content == first.content == "left"
    assert second.response_metadata["logprobs"] == first.response_metadata["logprobs"]


def _generation(text: str) -> list[ChatGeneration]:
    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    message = AIMessage(content=text, usage_metadata=usage, response_metadata={"logprobs": None})
    return [ChatGeneration(message=message)]


def _writer(cache: ProposalCache, worker: int, barrier: Any, count: int) -> None:
    barrier.wait(timeout=60)
    for i in range(count):
        cache.update(f"prompt-{worker}-{i}", "llm", _generation(f"{worker}-{i}"))
        assert cache.lookup(f"prompt-{worker}-{i}", "llm") is not None


@pytest.mark.slow  # two spawned interpreters importing the package: seconds on a busy box
def test_concurrent_processes_write_safely(db: Path) -> None:
    cache = ProposalCache(db)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(cache, w, barrier, 200)) for w in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert len(cache) == 400
    hit = cache.lookup("prompt-1-199", "llm")
    assert hit is not None and hit[0].message.content == "1-199"


def test_concurrent_threads_and_counters(db: Path) -> None:
    cache = ProposalCache(db)

    def work(t: int) -> None:
        for i in range(25):
            assert cache.lookup(f"p{t}-{i}", "llm") is None
            cache.update(f"p{t}-{i}", "llm", _generation("x"))
            assert cache.lookup(f"p{t}-{i}", "llm") is not None

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert (stats["lookups"], stats["hits"], stats["entries"]) == (200, 100, 100)
    assert stats["hit_rate"] == 0.5


def test_first_writer_wins_and_markers_are_not_stored(db: Path) -> None:
    cache = ProposalCache(db)
    cache.update("p", "llm", _generation("first"))
    cache.update("p", "llm", _generation("second"))
    assert cache.stats()["writes"] == 1
    hit = cache.lookup("p", "llm")
    assert hit is not None and hit[0].message.content == "first"
    assert hit[0].generation_info == {CACHE_HIT_KEY: True}
    cache.update("q", "llm", hit)  # re-storing a hit does not store the marker
    (row,) = sqlite3.connect(db).execute("SELECT value FROM proposals").fetchall()[:1]
    assert CACHE_HIT_KEY not in row[0]


def test_clear_namespaces_stats_repr_and_pickle(db: Path) -> None:
    a, b = ProposalCache(db, namespace="a"), ProposalCache(db, namespace="b")
    assert a.stats() == {
        "lookups": 0,
        "hits": 0,
        "misses": 0,
        "hit_rate": 0.0,
        "writes": 0,
        "entries": 0,
    }
    a.update("p", "llm", _generation("a"))
    b.update("p", "llm", _generation("b"))
    assert b.lookup("p", "llm")[0].message.content == "b"
    a.clear()
    assert (len(a), len(b)) == (0, 1)
    a.clear(all_namespaces=True)
    assert len(b) == 0
    assert repr(a) == f"ProposalCache(path={str(db)!r}, namespace='a')"
    clone = pickle.loads(pickle.dumps(b))
    assert (clone.path, clone.namespace, clone.stats()["lookups"]) == (db, "b", 0)
    b.close()
    assert len(b) == 0  # reopens after close


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    path = blocker / "sub" / "proposals.sqlite"
    with pytest.raises(ProposalCacheError, match="not-a-dir"):
        ProposalCache(path)
    with pytest.raises(ProposalCacheError, match="is a directory"):
        ProposalCache(tmp_path)


def test_corrupt_file_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "proposals.sqlite"
    garbage = b"this is not a sqlite database\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(ProposalCacheError, match=r"proposals\.sqlite.*not a valid SQLite"):
        ProposalCache(path)
    assert path.read_bytes() == garbage


def test_foreign_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(ProposalCacheError, match=r"app\.sqlite.*not a proposal cache"):
        ProposalCache(path)
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    conn.close()
    assert tables == ["users"]
