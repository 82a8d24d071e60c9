"""List prices and the hybrid-MAS paper's edge energy and KV-cache estimates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens.

    Attributes:
        input: Uncached prompt tokens.
        cached_input: Prompt tokens served from the provider's prompt cache.
        output: Generated tokens.
    """

    input: float
    cached_input: float
    output: float

    def __post_init__(self) -> None:
        for name in ("input", "cached_input", "output"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"ModelPrice.{name} must be >= 0 USD per 1M tokens, got {value!r}")


#: GPT-4o list price used by the hybrid-MAS paper: 2.5 / 1.25 cached / 10 USD per 1M tokens.
GPT_4O = ModelPrice(input=2.5, cached_input=1.25, output=10.0)
FREE = ModelPrice(input=0.0, cached_input=0.0, output=0.0)

#: List prices in USD per 1M tokens (input, cached input, output), keyed by lower-case model name.
#:
#: Sources, as published in 2025 and cross-checked in November 2026: OpenAI's API pricing page
#: (gpt-4o, gpt-4o-mini, the gpt-4.1 family, o3 after its June 2025 cut, o3-mini, o4-mini);
#: Anthropic's pricing page (cached input = the 0.1x cache-read price; cache writes are not
#: modelled); for open models, typical serverless-provider prices of mid-2025 (DeepInfra-like;
#: other hosts charge up to ~7x more, e.g. Together's "Turbo" variants, which are deliberately
#: not matched). Open-model hosts rarely discount cached input, so cached = input there.
#: Prices change: pass your own ``Pricing(prices=...)`` when the bill matters.
LIST_PRICES: Mapping[str, ModelPrice] = {
    # OpenAI
    "gpt-4o": GPT_4O,
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4.1": ModelPrice(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": ModelPrice(input=0.10, cached_input=0.025, output=0.40),
    "o3": ModelPrice(input=2.00, cached_input=0.50, output=8.00),
    "o3-mini": ModelPrice(input=1.10, cached_input=0.55, output=4.40),
    "o4-mini": ModelPrice(input=1.10, cached_input=0.275, output=4.40),
    # Anthropic
    "claude-sonnet-4": ModelPrice(input=3.00, cached_input=0.30, output=15.00),
    "claude-sonnet-4-5": ModelPrice(input=3.00, cached_input=0.30, output=15.00),
    "claude-3-7-sonnet": ModelPrice(input=3.00, cached_input=0.30, output=15.00),
    "claude-3-5-sonnet": ModelPrice(input=3.00, cached_input=0.30, output=15.00),
    "claude-haiku-4-5": ModelPrice(input=1.00, cached_input=0.10, output=5.00),
    "claude-3-5-haiku": ModelPrice(input=0.80, cached_input=0.08, output=4.00),
    "claude-3-haiku": ModelPrice(input=0.25, cached_input=0.03, output=1.25),
    # Open models at a typical serverless host
    "qwen2.5-72b-instruct": ModelPrice(input=0.13, cached_input=0.13, output=0.40),
    "qwen2.5-7b-instruct": ModelPrice(input=0.04, cached_input=0.04, output=0.10),
    "llama-3.3-70b-instruct": ModelPrice(input=0.23, cached_input=0.23, output=0.40),
    "llama-3.1-8b-instruct": ModelPrice(input=0.03, cached_input=0.03, output=0.05),
    "meta-llama-3.1-8b-instruct": ModelPrice(input=0.03, cached_input=0.03, output=0.05),
    "deepseek-v3": ModelPrice(input=0.27, cached_input=0.07, output=1.10),
    "deepseek-chat": ModelPrice(input=0.27, cached_input=0.07, output=1.10),
}

#: Where a price came from: a listed name (``"table"``), the user's explicit
#: ``Pricing(default=...)`` (``"default"``), or nothing known, priced at GPT-4o (``"unknown"``).
PriceSource = Literal["table", "default", "unknown"]

# A listed name matches a longer one only when the rest is a snapshot / version suffix:
# "-2024-07-18", "-20241022", "-0613", "@20240620", "-v1:0", "-latest", "-preview". So
# "gpt-4o-mini-2024-07-18" is "gpt-4o-mini" and never "gpt-4o" ("-mini" is another model).
_VERSION_SUFFIX = re.compile(r"(?:[-@:_](?:\d+|v\d+(?:[.:]\d+)*|latest|preview))+")

_warned: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class PriceMatch:
    """How one call was priced.

    Attributes:
        price: The price applied.
        source: ``"table"``, ``"default"`` or ``"unknown"`` (see `PriceSource`).
        priced_as: The listed name that matched (``None`` unless ``source == "table"``).
    """

    price: ModelPrice
    source: PriceSource
    priced_as: str | None = None


def _candidates(name: str) -> list[str]:
    """``name`` lower-cased, then without its provider prefix (``"Qwen/Qwen2.5-7B"`` -> both)."""
    low = name.strip().lower()
    tail = low.rsplit("/", 1)[-1]
    return [low] if tail == low else [low, tail]


@dataclass(frozen=True)
class Pricing:
    """Per-model prices, looked up by name with snapshot suffixes tolerated.

    Args:
        prices: USD per 1M tokens by model name (case-insensitive). Replaces the shipped
            `LIST_PRICES`; extend it with ``{**LIST_PRICES, "mine": ModelPrice(...)}``.
        default: The price of models not in ``prices``. When left ``None`` an unknown model is
            priced at GPT-4o (an over-estimate for most models, so budgets err on the safe side),
            marked ``"unknown"`` and logged as a warning once per name.

    Example:
        >>> Pricing().cost("gpt-4o", input_tokens=1_000_000, output_tokens=0)
        2.5
        >>> Pricing().resolve("my-alias", "Qwen/Qwen2.5-72B-Instruct").priced_as
        'qwen2.5-72b-instruct'
    """

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(LIST_PRICES))
    default: ModelPrice | None = None

    def _lookup(self, name: str) -> str | None:
        """The listed name ``name`` resolves to: equal, else the longest whose remainder is a
        version suffix; ``None`` if none."""
        listed = {k.lower(): k for k in self.prices}
        for cand in _candidates(name):
            if cand in listed:
                return listed[cand]
            hits = [
                k
                for k in listed
                if cand.startswith(k) and _VERSION_SUFFIX.fullmatch(cand, len(k)) is not None
            ]
            if hits:
                return listed[max(hits, key=len)]
        return None

    def resolve(self, *names: str | None) -> PriceMatch:
        """Price the first of ``names`` that is listed (configured name first, then the one
        the provider reported); else the explicit default; else GPT-4o marked ``"unknown"``.

        Args:
            names: Model names in order of trust; ``None`` and empty ones are skipped.

        Returns:
            The `PriceMatch`. An ``"unknown"`` one is logged as a warning (once per names).
        """
        given = tuple(n for n in names if n)
        for name in given:
            key = self._lookup(name)
            if key is not None:
                return PriceMatch(self.prices[key], "table", key)
        if self.default is not None:
            return PriceMatch(self.default, "default")
        if given not in _warned:
            _warned.add(given)
            logger.warning(
                "no price listed for model %s; charging the GPT-4o list price (%s USD per 1M "
                "input / %s output). Pass Pricing(prices={..., name: ModelPrice(...)}) or "
                "Pricing(default=...) to price it.",
                " / ".join(repr(n) for n in given) or "(unnamed)",
                GPT_4O.input,
                GPT_4O.output,
            )
        return PriceMatch(GPT_4O, "unknown")

    def price(self, model: str) -> ModelPrice:
        """The price of ``model`` (see `resolve`)."""
        return self.resolve(model).price

    def cost(
        self,
        model: str | ModelPrice,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
    ) -> float:
        """USD for one call. ``input_tokens`` includes ``cached_tokens``.

        Args:
            model: A model name (priced with `resolve`) or the `ModelPrice` to apply.
            input_tokens: Prompt tokens, cached ones included.
            output_tokens: Generated tokens.
            cached_tokens: Prompt tokens read from the provider's cache.

        Raises:
            ValueError: On negative counts or more cached than input tokens.
        """
        if min(input_tokens, output_tokens, cached_tokens) < 0:
            raise ValueError(
                "token counts must be >= 0, got "
                f"input={input_tokens}, output={output_tokens}, cached={cached_tokens}"
            )
        if cached_tokens > input_tokens:
            raise ValueError(
                f"cached_tokens ({cached_tokens}) cannot exceed input_tokens ({input_tokens})"
            )
        p = model if isinstance(model, ModelPrice) else self.price(model)
        uncached = input_tokens - cached_tokens
        return (
            uncached * p.input + cached_tokens * p.cached_input + output_tokens * p.output
        ) / 1e6


def edge_energy_joules(
    n_params: float, prompt_tokens: int, decode_tokens: int, ops_per_joule: float = 1.5e12
) -> float:
    """Edge inference energy, E = 2 N (n_p + n_d) / eta (hybrid-MAS paper, eq. for dense models).

    Args:
        n_params: Model parameters N.
        prompt_tokens: Prefill tokens n_p.
        decode_tokens: Generated tokens n_d.
        ops_per_joule: Hardware efficiency eta (default 1.5e12 ops/J, the paper's example).

    Returns:
        Joules. A comparative estimate: DRAM traffic, runtime overhead and thermals are ignored.

    Example:
        >>> round(edge_energy_joules(4e9, 1000, 200), 2)
        6.4
    """
    if n_params < 0 or prompt_tokens < 0 or decode_tokens < 0 or ops_per_joule <= 0:
        raise ValueError(
            "need n_params, prompt_tokens, decode_tokens >= 0 and ops_per_joule > 0, got "
            f"{n_params}, {prompt_tokens}, {decode_tokens}, {ops_per_joule}"
        )
    return 2.0 * n_params * (prompt_tokens + decode_tokens) / ops_per_joule


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, context_tokens: int, bytes_per_value: int = 2
) -> int:
    """KV-cache size, M = 2 * L * H_kv * d_h * b * C (keys and values, one sequence).

    Example:
        >>> kv_cache_bytes(30, 3, 64, 2048)  # SmolLM2-135M at 2048 tokens, bf16
        47185920
    """
    values = (n_layers, n_kv_heads, head_dim, context_tokens, bytes_per_value)
    if min(values) < 0:
        raise ValueError(f"KV-cache dimensions must be >= 0, got {values}")
    return 2 * n_layers * n_kv_heads * head_dim * bytes_per_value * context_tokens
