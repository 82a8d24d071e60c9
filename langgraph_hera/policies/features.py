"""Features of the Hera router: `FeatureSpec` (which features; stored with the model) and
`HeraFeaturizer` (`RouteInput` -> feature vector).

The featurizer is the *same* code at train time and at decision time: sentence embeddings of
chosen text parts, state scalars, route history, and (edge-first routing) the edge's proposal,
its log-probability, and whether it repeats or undoes what the episode already did. Tool-calling
agents add the tool group (``FeatureSpec(tools=True)``): the tools offered (count, hashed
names), the last tool result and whether it was an error, and, with ``edge=True``, which tool
the edge proposes and whether its arguments fit the tool's JSON schema (`args_match_schema`).
The `RouteInput.extra` keys it reads are written by
`langgraph_hera.routing.features.tool_context` and ``edge_tool_context``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from langgraph_hera.policies.base import RouteInput
from langgraph_hera.policies.embedders import DEFAULT_EMBEDDING_MODEL, Embedder, get_embedder

#: Parts of a `RouteInput` that can be embedded (join several with ``+`` into one text).
TEXT_PARTS = ("task", "observation", "last_action", "edge_action")

#: State scalars (group ``scalars``), in vector order.
SCALAR_FEATURES = (
    "step_log",
    "first_step",
    "n_valid_log",
    "action_repeats_log",
    "observation_repeats_log",
    "last_action_invalid",
    "last_action_still_valid",
    "observation_words_log",
)
#: Route-history features (group ``history``, when ``history_k > 0``).
HISTORY_FEATURES = ("hist_cloud_share", "hist_last_cloud", "hist_edge_run_log")
#: Edge-proposal features (group ``edge``): edge-first routing.
EDGE_FEATURES = (
    "edge_missing",
    "edge_valid",
    "edge_logprob",
    "edge_prob",
    "edge_logprob_missing",
    "edge_repeats_last_action",
)
#: Edge-proposal-vs-history features (group ``edge_history``): is the proposal a repeat or an
#: undo of what the episode already did? (The loops a weak edge falls into.)
EDGE_HISTORY_FEATURES = ("edge_action_done_before_log", "edge_undoes_last_action")
#: Edge-margin features (group ``edge_margin``): how far the proposal was ahead of the edge's
#: runner-up (`langgraph_hera.routing.decoding.reply_margin`, clipped to [0, 20] nats) and
#: whether the server sent alternatives. A confident log-probability can still be a narrow
#: choice between two actions (``put cap in wardrobe`` vs ``in dresser``).
EDGE_MARGIN_FEATURES = ("edge_margin", "edge_margin_missing")
#: Tool-calling features (group ``tools``), in vector order; then ``tool_name:<i>`` for the
#: hashed names of the tools offered (``tool_hash_dim`` buckets).
TOOL_FEATURES = (
    "tools_offered_log",
    "tools_unknown",
    "last_tool_result",
    "last_tool_error",
    "tool_errors_in_run_log",
)
#: Edge-proposal features of tool-calling agents (``tools`` and ``edge``); then
#: ``edge_tool:<i>`` for the hashed name of the proposed tool.
EDGE_TOOL_FEATURES = ("edge_tool_call", "edge_tool_offered", "edge_args_valid")
_OPPOSITE = {
    "north": "south",
    "south": "north",
    "east": "west",
    "west": "east",
    "up": "down",
    "down": "up",
}


def normalize_text(text: Any) -> str:
    """Case- and whitespace-insensitive form (the env node's, for repeat counts)."""
    return " ".join(str(text or "").lower().split())


def undoes(last_action: str | None, action: str | None) -> bool:
    """Whether ``action`` reverses ``last_action``: walking back the way one came, taking back
    what was just put down, dropping what was just taken, closing what was just opened (and
    the reverse)."""
    last, act = normalize_text(last_action or ""), normalize_text(action or "")
    if not last or not act:
        return False
    lw, aw = last.split(), act.split()
    if lw[0] in ("move", "go") and aw[0] in ("move", "go") and len(lw) == len(aw) == 2:
        return _OPPOSITE.get(lw[1]) == aw[1]
    # ("take X" then "put X in Y" is the normal sequence: where X came from is not known.)
    pairs = {
        ("open", "close"),
        ("close", "open"),
        ("put", "take"),
        ("drop", "take"),
        ("take", "drop"),
    }
    if (lw[0], aw[0]) not in pairs:
        return False

    def obj(words: list[str]) -> str:
        rest = words[1:]
        for sep in ("in", "on", "from", "into", "onto"):
            if sep in rest:
                rest = rest[: rest.index(sep)]
                break
        return " ".join(rest)

    return obj(lw) == obj(aw)


def hash_bucket(name: str, buckets: int) -> int:
    """A stable bucket of ``name`` in ``range(buckets)`` (md5, the same in every process)."""
    return int.from_bytes(hashlib.md5(name.encode()).digest()[:4], "little") % buckets


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def args_match_schema(args: Any, schema: Mapping[str, Any] | None) -> bool:
    """Whether tool-call arguments fit a tool's JSON schema (the subset tools use).

    Checks the type (``bool`` is not a number), ``required`` keys, ``enum``, the properties'
    schemas, ``items`` and ``additionalProperties: false``, recursively; other keywords are not
    checked. An empty or missing schema accepts any object.
    """
    if not schema:
        return isinstance(args, dict)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds:
        ok = False
        for k in kinds:
            types = _JSON_TYPES.get(str(k), (object,))
            if isinstance(args, bool) and bool not in types:
                continue
            if isinstance(args, types):
                ok = True
                break
        if not ok:
            return False
    if "enum" in schema and args not in schema["enum"]:
        return False
    if isinstance(args, dict):
        props = schema.get("properties") or {}
        if any(k not in args for k in schema.get("required") or []):
            return False
        if schema.get("additionalProperties") is False and any(k not in props for k in args):
            return False
        return all(args_match_schema(v, props[k]) for k, v in args.items() if k in props)
    if isinstance(args, list) and isinstance(schema.get("items"), Mapping):
        return all(args_match_schema(v, schema["items"]) for v in args)
    return True


@dataclass(frozen=True)
class FeatureSpec:
    """Which features the router sees; stored with the model.

    Attributes:
        text_fields: Texts to embed, one embedding each; a field is one of `TEXT_PARTS` or
            several joined by ``+`` (embedded as one text, ``"part: value"`` lines).
        embedding_model: ``sentence-transformers/all-MiniLM-L6-v2`` (default) or
            ``hashed-<dim>``.
        embedding_dim: Size of one embedding.
        scalars: Include the state scalars (`SCALAR_FEATURES`).
        history_k: Route-history window (0: no history features). Imitation data from an
            always-cloud run has a constant history, so stage 1 leaves it off.
        edge: Include the edge proposal features (`EDGE_FEATURES`): edge-first routing.
        edge_history: Include `EDGE_HISTORY_FEATURES` (needs ``edge``): whether the proposal
            repeats an action already taken in the episode, or undoes the last one.
        edge_margin: Include `EDGE_MARGIN_FEATURES` (needs ``edge``): the proposal's margin
            over the edge's runner-up answer (served with ``top_logprobs``).
        max_chars: Texts are whitespace-normalised and clipped to this many characters.
        tools: Include the tool-calling features (`TOOL_FEATURES` and ``tool_hash_dim`` hashed
            tool names; with ``edge``, `EDGE_TOOL_FEATURES` and the proposed tool's bucket).
        tool_hash_dim: Buckets of the hashed tool names.
    """

    text_fields: tuple[str, ...] = ("task", "observation", "last_action")
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_dim: int = 384
    scalars: bool = True
    history_k: int = 0
    edge: bool = False
    edge_history: bool = False
    edge_margin: bool = False
    max_chars: int = 1000
    tools: bool = False
    tool_hash_dim: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_fields", tuple(self.text_fields))
        for f in self.text_fields:
            bad = [p for p in f.split("+") if p not in TEXT_PARTS]
            if bad or not f:
                raise ValueError(
                    f"text field {f!r}: unknown part(s) {bad}; allowed parts: "
                    f"{', '.join(TEXT_PARTS)} (join several with '+')"
                )
        if len(set(self.text_fields)) != len(self.text_fields):
            raise ValueError(f"duplicate text fields in {self.text_fields}")
        if self.embedding_model.startswith("hashed-") and (
            self.embedding_model != f"hashed-{self.embedding_dim}"
        ):
            raise ValueError(
                f"embedding_model {self.embedding_model!r} and embedding_dim "
                f"{self.embedding_dim} disagree (expected 'hashed-{self.embedding_dim}')"
            )
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim!r}")
        if self.history_k < 0:
            raise ValueError(f"history_k must be >= 0, got {self.history_k!r}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars!r}")
        if self.tool_hash_dim < 1:
            raise ValueError(f"tool_hash_dim must be >= 1, got {self.tool_hash_dim!r}")
        if self.edge_history and not self.edge:
            raise ValueError("edge_history=True needs edge=True (the edge proposal features)")
        if self.edge_margin and not self.edge:
            raise ValueError("edge_margin=True needs edge=True (the edge proposal features)")
        if not self.names():
            raise ValueError("the feature spec selects no features")

    @property
    def uses_edge_proposal(self) -> bool:
        """Whether the features read the edge's proposal (edge-first routing)."""
        return self.edge or any("edge_action" in f.split("+") for f in self.text_fields)

    def names(self) -> list[str]:
        """Feature names, in vector order."""
        names = [f"emb:{f}:{i}" for f in self.text_fields for i in range(self.embedding_dim)]
        if self.scalars:
            names += list(SCALAR_FEATURES)
        if self.history_k:
            names += list(HISTORY_FEATURES)
        if self.edge:
            names += list(EDGE_FEATURES)
        if self.edge_history:
            names += list(EDGE_HISTORY_FEATURES)
        if self.edge_margin:
            names += list(EDGE_MARGIN_FEATURES)
        if self.tools:
            names += list(TOOL_FEATURES)
            names += [f"tool_name:{i}" for i in range(self.tool_hash_dim)]
            if self.edge:
                names += list(EDGE_TOOL_FEATURES)
                names += [f"edge_tool:{i}" for i in range(self.tool_hash_dim)]
        return names

    @property
    def dim(self) -> int:
        """Length of the feature vector."""
        return len(self.names())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["text_fields"] = list(self.text_fields)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Inverse of `to_dict`; unknown keys are an error (naming them)."""
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown feature-spec keys {sorted(extra)}; known: {sorted(known)}")
        return cls(**{**data, "text_fields": tuple(data.get("text_fields", ()))})


class HeraFeaturizer:
    """`RouteInput` -> feature vector, as specified by a `FeatureSpec`.

    The same object featurises recorded states at train time and live states at decision time.

    Args:
        spec: The feature spec.
        embedder: An embedder matching ``spec.embedding_model`` / ``embedding_dim`` (default:
            the process-wide one from `get_embedder`).

    Raises:
        ValueError: ``embedder`` does not match the spec.
    """

    def __init__(self, spec: FeatureSpec | None = None, embedder: Embedder | None = None) -> None:
        self.spec = spec or FeatureSpec()
        if embedder is not None and (
            embedder.model_id != self.spec.embedding_model
            or embedder.dim != self.spec.embedding_dim
        ):
            raise ValueError(
                f"embedder {embedder.model_id!r} ({embedder.dim}-d) does not match the feature "
                f"spec's {self.spec.embedding_model!r} ({self.spec.embedding_dim}-d)"
            )
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use; its model loads on the first text)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.spec.embedding_model, self.spec.embedding_dim)
        return self._embedder

    @property
    def names(self) -> list[str]:
        return self.spec.names()

    @property
    def dim(self) -> int:
        return self.spec.dim

    def _text(self, ri: RouteInput, text_field: str) -> str:
        parts = text_field.split("+")
        if len(parts) == 1:
            value = getattr(ri, parts[0]) or ""
            text = " ".join(str(value).split())
        else:
            text = "\n".join(f"{p}: {' '.join(str(getattr(ri, p) or '').split())}" for p in parts)
        return text[: self.spec.max_chars]

    def _scalars(self, ri: RouteInput) -> list[float]:
        extra = ri.extra or {}
        last = normalize_text(ri.last_action)
        valid = {normalize_text(a) for a in ri.valid_actions}
        return [
            math.log1p(max(ri.step, 0)),
            1.0 if ri.step == 0 else 0.0,
            math.log1p(len(ri.valid_actions)),
            math.log1p(max(float(extra.get("action_repeats", 0) or 0), 0.0)),
            math.log1p(max(float(extra.get("observation_repeats", 0) or 0), 0.0)),
            1.0 if extra.get("last_action_valid") is False else 0.0,
            1.0 if last and last in valid else 0.0,
            math.log1p(len(str(ri.observation).split())),
        ]

    def _history(self, ri: RouteInput) -> list[float]:
        hist = list(ri.history)[-self.spec.history_k :]
        run = 0
        for t in reversed(ri.history):
            if t != "edge":
                break
            run += 1
        return [
            sum(t == "cloud" for t in hist) / len(hist) if hist else 0.0,
            1.0 if ri.history and ri.history[-1] == "cloud" else 0.0,
            math.log1p(run),
        ]

    def _edge(self, ri: RouteInput) -> list[float]:
        if ri.edge_action is None:
            return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        lp = ri.edge_logprob
        lp_ok = lp is not None and math.isfinite(float(lp))
        lp_c = min(max(float(lp), -20.0), 0.0) if lp_ok else 0.0  # type: ignore[arg-type]
        return [
            0.0,
            1.0 if (ri.extra or {}).get("edge_action_valid") else 0.0,
            lp_c,
            math.exp(lp_c) if lp_ok else 0.0,
            0.0 if lp_ok else 1.0,
            1.0
            if ri.last_action and normalize_text(ri.edge_action) == normalize_text(ri.last_action)
            else 0.0,
        ]

    def _edge_history(self, ri: RouteInput) -> list[float]:
        if ri.edge_action is None:
            return [0.0, 0.0]
        extra = ri.extra or {}
        done_before = float(extra.get("edge_action_done_before", 0) or 0)
        return [
            math.log1p(max(done_before, 0.0)),
            1.0 if undoes(ri.last_action, ri.edge_action) else 0.0,
        ]

    def _edge_margin(self, ri: RouteInput) -> list[float]:
        margin = ri.edge_margin
        if ri.edge_action is None or margin is None or not math.isfinite(float(margin)):
            return [0.0, 1.0]
        return [min(max(float(margin), 0.0), 20.0), 0.0]

    def _tools(self, ri: RouteInput) -> list[float]:
        extra = ri.extra or {}
        k = self.spec.tool_hash_dim
        offered = extra.get("tools_offered")
        names = [0.0] * k
        for name in offered or []:
            names[hash_bucket(str(name), k)] = 1.0
        row = [
            math.log1p(len(offered or [])),
            1.0 if offered is None else 0.0,
            1.0 if extra.get("last_tool_result") else 0.0,
            1.0 if extra.get("last_tool_error") else 0.0,
            math.log1p(max(float(extra.get("tool_errors_in_run", 0) or 0), 0.0)),
            *names,
        ]
        if self.spec.edge:
            tool = extra.get("edge_tool")
            proposed = [0.0] * k
            if tool:
                proposed[hash_bucket(str(tool), k)] = 1.0
            row += [
                1.0 if tool else 0.0,
                1.0 if tool and offered is not None and tool in offered else 0.0,
                1.0 if extra.get("edge_args_valid") else 0.0,
                *proposed,
            ]
        return row

    def transform(self, states: Sequence[RouteInput]) -> np.ndarray:
        """Feature matrix of ``states``, shape ``(len(states), dim)`` (float64)."""
        blocks: list[np.ndarray] = []
        for f in self.spec.text_fields:
            blocks.append(self.embedder.embed([self._text(ri, f) for ri in states]))
        rows: list[list[float]] = [[] for _ in states]
        for row, ri in zip(rows, states, strict=True):
            if self.spec.scalars:
                row += self._scalars(ri)
            if self.spec.history_k:
                row += self._history(ri)
            if self.spec.edge:
                row += self._edge(ri)
            if self.spec.edge_history:
                row += self._edge_history(ri)
            if self.spec.edge_margin:
                row += self._edge_margin(ri)
            if self.spec.tools:
                row += self._tools(ri)
        if rows and rows[0]:
            blocks.append(np.asarray(rows, dtype=np.float64))
        if not blocks or not states:
            return np.zeros((len(states), self.dim))
        return np.concatenate(blocks, axis=1)

    def transform_one(self, state: RouteInput) -> np.ndarray:
        """Feature vector of one state, shape ``(dim,)``."""
        return self.transform([state])[0]
