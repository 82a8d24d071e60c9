"""Benchmark the edge server backends: start-up, prompt / generation throughput, memory, overhead.

For each available backend (vLLM, llama.cpp) this starts `EdgeServer` on the embedded SmolLM2,
then measures, non-streaming and one request at a time:

- start-up: seconds from launching the process to ``GET /v1/models`` answering 200;
- prompt tok/s: ``usage.prompt_tokens / wall`` for a ~600-token prompt with ``max_tokens=1``
  (each request gets a unique first line so vLLM's prefix cache cannot serve it);
- generation tok/s: ``usage.completion_tokens / wall`` for short prompts with ``max_tokens=128``
  (prompt time is included; it is a few ms at these lengths);
- peak RSS: the sum of RSS over the server's process tree, sampled every 0.2 s from launch to
  the last request (shared pages are counted once per process, so this is an upper bound);
- client overhead: the same tiny request (``max_tokens=1``) through the raw ``openai`` client,
  ``langchain_openai.ChatOpenAI`` and the plugin's ``edge_chat_model``, interleaved; medians.

Usage:
    python scripts/bench_serving.py [--backends vllm,llamacpp] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from langgraph_hera.models import EdgeServer, EdgeServerError, edge_chat_model

GEN_PROMPTS = [
    "Write a short story about a robot who learns to cook.",
    "Explain how a bicycle works to a ten-year-old.",
    "List some good habits for writing clean Python code and say why each one matters.",
]
PARAGRAPH = (
    "The kitchen is a small room with a fridge, a counter and a stove. On the counter there is a "
    "red apple, a knife and a cookbook. The door to the north leads to the hallway, and the door "
    "to the east leads to the backyard, where a garden grows carrots and potatoes. "
)
PREFILL_PROMPT = PARAGRAPH * 10 + "\nSummarise the room in one word."


class TreeRSS:
    """Samples the summed RSS of a process and its descendants in a background thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.pid: int | None = None
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeRSS:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.pid is not None:
                self.peak_bytes = max(self.peak_bytes, tree_rss(self.pid))

    def sample_now(self) -> None:
        if self.pid is not None:
            self.peak_bytes = max(self.peak_bytes, tree_rss(self.pid))


def tree_rss(pid: int) -> int:
    """Summed RSS (bytes) of ``pid`` and all its descendants (psutil, else /proc)."""
    try:
        import psutil

        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total
    except ImportError:
        return _proc_tree_rss(pid)


def _proc_tree_rss(pid: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
        rss[int(entry.name)] = pages * page
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def _nonce_system() -> dict[str, str]:
    return {"role": "system", "content": f"Request {uuid.uuid4().hex[:8]}. Be helpful."}


def bench_backend(backend: str, repeats: int, overhead_n: int) -> dict[str, Any]:
    from openai import OpenAI

    # The raw embedded model on both backends (llama.cpp cannot serve the LoRA adapter), so
    # both serve the same weights.
    server = EdgeServer(backend=backend, startup_timeout=900, adapter=None)  # type: ignore[arg-type]
    sampler = TreeRSS().start()
    t0 = time.perf_counter()
    # Sample from the moment the process exists: start() blocks until ready.
    watcher = threading.Thread(target=_attach_when_launched, args=(server, sampler), daemon=True)
    watcher.start()
    try:
        server.start()
        start_call_s = time.perf_counter() - t0
        sampler.pid = server.pid
        client = OpenAI(base_url=server.base_url, api_key="EMPTY", timeout=600, max_retries=0)
        name = server.model_name

        def chat(messages: list[dict[str, str]], max_tokens: int) -> tuple[float, Any]:
            t = time.perf_counter()
            resp = client.chat.completions.create(
                model=name,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=0,
            )
            return time.perf_counter() - t, resp.usage

        first_s, _ = chat([{"role": "user", "content": "Hi"}], 8)
        chat([_nonce_system(), {"role": "user", "content": PREFILL_PROMPT}], 1)  # warm-up

        prefill = []
        for _ in range(repeats):
            wall, usage = chat([_nonce_system(), {"role": "user", "content": PREFILL_PROMPT}], 1)
            prefill.append((usage.prompt_tokens, wall))
        gen = []
        for _ in range(repeats):
            for prompt in GEN_PROMPTS:
                msgs = [_nonce_system(), {"role": "user", "content": prompt}]
                wall, usage = chat(msgs, 128)
                gen.append((usage.completion_tokens, usage.prompt_tokens, wall))

        overhead = measure_overhead(server, client, overhead_n)
        sampler.sample_now()
    finally:
        server.stop()
        peak = sampler.stop()

    prompt_tps = sum(t for t, _ in prefill) / sum(w for _, w in prefill)
    gen_tps = sum(c for c, _, _ in gen) / sum(w for _, _, w in gen)
    return {
        "backend": server.backend,
        "model": server.model_name,
        "startup_s": round(server.startup_seconds or float("nan"), 1),
        "start_call_s": round(start_call_s, 1),
        "first_request_s": round(first_s, 2),
        "prompt_tokens_per_request": prefill[0][0],
        "prompt_tok_s": round(prompt_tps, 1),
        "gen_tokens_total": sum(c for c, _, _ in gen),
        "gen_requests": len(gen),
        "gen_tok_s": round(gen_tps, 1),
        "peak_rss_mb": round(peak / 2**20),
        **overhead,
    }


def _attach_when_launched(server: EdgeServer, sampler: TreeRSS) -> None:
    while sampler.pid is None and not sampler._stop.is_set():
        if server.pid is not None:
            sampler.pid = server.pid
            return
        time.sleep(0.05)


def measure_overhead(server: EdgeServer, client: Any, n: int) -> dict[str, Any]:
    """Median latency of one tiny request via raw openai, ChatOpenAI and edge_chat_model."""
    from langchain_openai import ChatOpenAI

    lc = ChatOpenAI(
        base_url=server.base_url,
        api_key="EMPTY",  # type: ignore[arg-type]
        model=server.model_name,
        max_tokens=1,  # type: ignore[call-arg]
        temperature=0,
        timeout=600,
        max_retries=0,
    )
    edge = edge_chat_model(server.base_url, server.model_name, max_tokens=1, timeout=600)
    prompt = "Say yes."

    def raw() -> None:
        client.chat.completions.create(
            model=server.model_name,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=1,
            temperature=0,
        )

    calls = {"raw_openai": raw, "chat_openai": lambda: lc.invoke(prompt),
             "edge_chat_model": lambda: edge.invoke(prompt)}  # fmt: skip
    for fn in calls.values():  # warm connections and caches
        fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(n):
        for key, fn in calls.items():  # interleaved so server-side drift hits all equally
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {
        "overhead_n": n,
        "raw_openai_ms": round(med["raw_openai"], 1),
        "chat_openai_ms": round(med["chat_openai"], 1),
        "edge_chat_model_ms": round(med["edge_chat_model"], 1),
        "chat_openai_overhead_ms": round(med["chat_openai"] - med["raw_openai"], 1),
        "edge_chat_model_overhead_ms": round(med["edge_chat_model"] - med["raw_openai"], 1),
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "gpu": "none",
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: list[dict[str, Any]]) -> str:
    cols = [
        ("backend", "backend"),
        ("startup_s", "start-up (s)"),
        ("first_request_s", "first request (s)"),
        ("prompt_tok_s", "prompt tok/s"),
        ("gen_tok_s", "generation tok/s"),
        ("peak_rss_mb", "peak RSS, tree (MB)"),
        ("raw_openai_ms", "raw openai (ms)"),
        ("chat_openai_overhead_ms", "ChatOpenAI overhead (ms)"),
        ("edge_chat_model_overhead_ms", "edge_chat_model overhead (ms)"),
    ]
    lines = [
        "| " + " | ".join(h for _, h in cols) + " |",
        "|" + "|".join(" --- " for _ in cols) + "|",
    ]
    for r in results:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k, _ in cols) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="vllm,llamacpp")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overhead-n", type=int, default=20)
    parser.add_argument("--out", default="bench_serving.json")
    args = parser.parse_args()

    results, skipped = [], {}
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.date.today().isoformat(),
        "machine": machine(),
    }
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(f"## {backend}", file=sys.stderr, flush=True)
        try:
            results.append(bench_backend(backend, args.repeats, args.overhead_n))
        except EdgeServerError as exc:
            skipped[backend] = str(exc).splitlines()[0]
            print(f"skipped {backend}: {skipped[backend]}", file=sys.stderr)
    Path(args.out).write_text(
        json.dumps({**meta, "results": results, "skipped": skipped}, indent=2)
    )
    print(markdown(results))
    for backend, why in skipped.items():
        print(f"\n- {backend}: skipped ({why})")
    print(f"\nJSON: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
