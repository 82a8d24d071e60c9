"""The cost ledger: one entry per model call, fed by LangChain's ``usage_metadata``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from langgraph_hera.accounting._markers import is_cache_hit
from langgraph_hera.accounting._tokens import TokenCounter
from langgraph_hera.accounting.pricing import Pricing, edge_energy_joules
from langgraph_hera.state import LedgerEntry

#: SmolLM2-135M-Instruct, the embedded default edge model.
DEFAULT_EDGE_PARAMS = 134.5e6


def _usage(message: BaseMessage | None) -> tuple[int, int, int] | None:
    """(input, cached, output) tokens from a message's ``usage_metadata``; ``None`` when the
    reply reports none (absent, or all zeros: a reply is never zero tokens)."""
    usage = getattr(message, "usage_metadata", None) or {}
    details = usage.get("input_token_details") or {}
    counts = (
        int(usage.get("input_tokens", 0) or 0),
        int(details.get("cache_read", 0) or 0),
        int(usage.get("output_tokens", 0) or 0),
    )
    return counts if counts[0] or counts[2] else None


def _reported_name(message: BaseMessage | None) -> str | None:
    meta = getattr(message, "response_metadata", None) or {}
    name = meta.get("model_name") or meta.get("model")
    return str(name) if name else None


def entry_from_message(
    message: BaseMessage | None,
    *,
    step: int,
    target: str,
    latency_ms: float,
    pricing: Pricing | None = None,
    model: str = "unknown",
    edge_params: float = DEFAULT_EDGE_PARAMS,
    ops_per_joule: float = 1.5e12,
    error: str | None = None,
    side: str | None = None,
    prompt: Sequence[BaseMessage] | None = None,
) -> LedgerEntry:
    """Build the ledger entry for one model call.

    Cloud calls are priced with ``pricing``, looked up by the configured name ``model`` first
    and then by the name the reply reports (see `Pricing.resolve`); edge calls cost no USD and
    are charged edge energy E = 2N(n_p + n_d)/eta instead.

    A reply without ``usage_metadata`` (OpenAI-compatible servers under ``stream_mode=
    "messages"``, llama.cpp streams) is never free: its output tokens are counted from the reply
    (text, reasoning and tool calls) and its input tokens from ``prompt``, with tiktoken when the
    encoding is available offline, else chars/4 (see ``accounting/_tokens.py``).

    Args:
        message: The model's reply (its ``usage_metadata`` is read); ``None`` for a failed call.
        step: Agent step index.
        target: ``"edge"``, ``"cloud"`` or ``"supervisor"``.
        latency_ms: Wall time of the call.
        pricing: Cloud prices (default: `Pricing()`, the shipped list prices).
        model: The configured model name: priced first, and recorded when the reply does not
            name one.
        edge_params: Edge model parameter count N.
        ops_per_joule: Edge hardware efficiency eta.
        error: The error of a failed call.
        side: Where the model runs, ``"edge"`` or ``"cloud"`` (default: ``"edge"`` for the edge
            target, else ``"cloud"``): a supervisor on the edge (the reverse-role setting) is
            charged energy, not USD.
        prompt: The messages sent, used only to count input tokens when the reply reports no
            usage (without it, such an entry has 0 input tokens).

    Returns:
        The entry. Beyond the `LedgerEntry` fields it may carry ``error``, ``cache_hit``, and:
        ``price_source`` (cloud side: ``"table"``, ``"default"`` or ``"unknown"``),
        ``priced_as`` (the listed name used, when ``"table"``), ``usage_estimated`` (True when
        the counts were estimated) with ``usage_estimator`` (``"tiktoken:<encoding>"`` or
        ``"chars/4"``).
    """
    configured = model if model and model != "unknown" else None
    reported = _reported_name(message)
    name = reported or model
    usage = _usage(message)
    estimator: str | None = None
    if usage is None and message is not None:
        counter = TokenCounter(configured, reported)
        n_in = counter.prompt(prompt) if prompt else 0
        usage, estimator = (n_in, 0, counter.reply(message)), counter.method
    n_in, n_cached, n_out = usage or (0, 0, 0)
    # A reply served from the proposal cache cost no edge energy now.
    hit = message is not None and is_cache_hit(message)
    extra: dict[str, Any] = {}
    if (side or ("edge" if target == "edge" else "cloud")) == "edge":
        usd = 0.0
        energy = 0.0 if hit else edge_energy_joules(edge_params, n_in, n_out, ops_per_joule)
    else:
        prices = pricing or Pricing()
        match = prices.resolve(configured, reported)
        usd = prices.cost(
            match.price, input_tokens=n_in, output_tokens=n_out, cached_tokens=min(n_cached, n_in)
        )
        energy = 0.0
        extra["price_source"] = match.source
        if match.priced_as is not None:
            extra["priced_as"] = match.priced_as
    entry = LedgerEntry(
        step=step,
        target=target,
        model=name,
        input_tokens=n_in,
        cached_tokens=n_cached,
        output_tokens=n_out,
        usd=usd,
        energy_j=energy,
        latency_ms=latency_ms,
        ok=error is None,
    )
    if error is not None:
        entry["error"] = error
    if hit:
        entry["cache_hit"] = True
    if estimator is not None:
        extra["usage_estimated"] = True
        extra["usage_estimator"] = estimator
    # Keys the LedgerEntry TypedDict does not declare yet (NotRequired, to be added there).
    entry.update(extra)  # type: ignore[typeddict-item]
    return entry


def estimate_call_usd(
    prompt: Sequence[BaseMessage],
    *,
    model: str,
    pricing: Pricing | None = None,
    output_tokens: int = 512,
) -> float:
    """USD of one call on ``prompt`` before it is made (for keeping a USD cap): the prompt's
    tokens counted locally (tiktoken where its encoding is on disk, else characters / 4) at the
    model's input price, plus ``output_tokens`` at its output price.

    Raises:
        ValueError: A negative ``output_tokens``.
    """
    if output_tokens < 0:
        raise ValueError(f"output_tokens must be >= 0, got {output_tokens!r}")
    n_in = TokenCounter(model).prompt(list(prompt)) if prompt else 0
    return (pricing or Pricing()).cost(model, input_tokens=n_in, output_tokens=output_tokens)


class CostLedger:
    """A read-only view over ledger entries with totals per target.

    Example:
        >>> ledger = CostLedger(out["ledger"])
        >>> ledger.cloud_usd, ledger.summary()["cloud_calls"]
    """

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self.entries: list[LedgerEntry] = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def for_turn(self, turn: str | None = None) -> CostLedger:
        """The entries of one run (turn) of the thread: ``turn`` is the run's id (the ``turn``
        of its decisions and entries); ``None``: the latest run in the ledger.

        A thread's ledger accumulates over every turn; per-run caps count only the current
        run's entries, and this is the view that matches them.

        Example:
            >>> CostLedger(out["ledger"]).for_turn().summary()  # this turn only
        """
        if turn is None:
            turn = next((e.get("turn") for e in reversed(self.entries) if e.get("turn")), None)
        return CostLedger(e for e in self.entries if e.get("turn") == turn)

    def _select(self, target: str | None) -> list[LedgerEntry]:
        return [e for e in self.entries if target is None or e["target"] == target]

    def calls(self, target: str | None = None) -> int:
        """Number of calls (failed ones included) to ``target`` (all targets if ``None``)."""
        return len(self._select(target))

    def tokens(self, target: str | None = None) -> dict[str, int]:
        """Input / cached / output token totals for ``target``."""
        sel = self._select(target)
        return {
            "input": sum(e["input_tokens"] for e in sel),
            "cached": sum(e["cached_tokens"] for e in sel),
            "output": sum(e["output_tokens"] for e in sel),
        }

    def usd(self, target: str | None = None) -> float:
        """USD spent on ``target``."""
        return sum(e["usd"] for e in self._select(target))

    @property
    def cloud_usd(self) -> float:
        """USD spent on cloud calls, the supervisor included."""
        return self.usd("cloud") + self.usd("supervisor")

    @property
    def cloud_calls(self) -> int:
        """Calls to the cloud model, the supervisor included."""
        return self.calls("cloud") + self.calls("supervisor")

    @property
    def energy_j(self) -> float:
        """Estimated edge energy in joules."""
        return sum(e["energy_j"] for e in self.entries)

    def max_context_tokens(self, target: str | None = "edge") -> int:
        """The largest context (prompt + output tokens) of one call to ``target``: what the
        KV cache of that model must hold (the supervised executor's, with ``"edge"``)."""
        return max(
            (e["input_tokens"] + e["output_tokens"] for e in self._select(target)), default=0
        )

    def kv_cache_bytes(
        self,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        target: str | None = "edge",
        bytes_per_value: int = 2,
    ) -> int:
        """KV-cache estimate at `max_context_tokens`, M = 2 * L * H_kv * d_h * b * C."""
        from langgraph_hera.accounting.pricing import kv_cache_bytes

        return kv_cache_bytes(
            n_layers, n_kv_heads, head_dim, self.max_context_tokens(target), bytes_per_value
        )

    def summary(self) -> dict[str, Any]:
        """Totals as a flat dict (what `hera run` prints)."""
        edge, cloud = self.calls("edge"), self.calls("cloud")
        steps = edge + cloud
        return {
            "steps": steps,
            "edge_calls": edge,
            "cloud_calls": self.cloud_calls,
            "cloud_share": cloud / steps if steps else 0.0,
            "edge_tokens": sum(self.tokens("edge").values()) - self.tokens("edge")["cached"],
            "cloud_tokens": sum(self.tokens("cloud").values()) - self.tokens("cloud")["cached"],
            "cloud_usd": self.cloud_usd,
            "edge_energy_j": self.energy_j,
            "failed_calls": sum(not e["ok"] for e in self.entries),
        }
