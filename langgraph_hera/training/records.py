"""Recorded steps -> router training data.

`split_episodes` groups ``steps.jsonl`` records into episodes; `route_inputs_from_records`
rebuilds the decision-time `RouteInput` of every recorded step (``hera record --also-edge``) from
the episode's earlier records (repeats, last action, route history), exactly as
`route_input_from_state` builds it; `imitation_dataset` adds the stage-1 label ``1 - agree``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from langgraph_hera.policies.base import RouteInput
from langgraph_hera.policies.features import normalize_text


def split_episodes(records: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group step records into episodes, each sorted by step.

    Records are grouped by (suite, seed, policy) in file order; a step index that does not
    increase starts a new episode (a resumed run that re-ran a seed).
    """
    groups: dict[tuple[Any, Any, Any], list[list[dict[str, Any]]]] = {}
    for rec in records:
        key = (rec.get("suite"), rec.get("seed"), rec.get("policy"))
        eps = groups.setdefault(key, [[]])
        if eps[-1] and int(rec["step"]) <= int(eps[-1][-1]["step"]):
            eps.append([])
        eps[-1].append(rec)
    return [ep for eps in groups.values() for ep in eps if ep]


def route_inputs_from_records(
    episode: Sequence[dict[str, Any]],
    *,
    task: str | None = None,
    edge_proposal: bool = True,
) -> list[RouteInput]:
    """The decision-time `RouteInput` of every step of one recorded episode.

    Rebuilds what `route_input_from_state` sees at step t from the records before it: last
    action and its validity, ``action_repeats`` / ``observation_repeats`` (counted as the env
    node counts them), and the route history (the earlier records' targets). Steps re-routed
    after an edge failure are not represented in records (their history is one entry short).

    Args:
        episode: The episode's records, in step order (see `split_episodes`).
        task: The task, when the records lack a ``task`` field (graph ``trajectory`` output).
        edge_proposal: Fill the edge proposal (``edge_action``, ``edge_logprob``, ``edge_margin``,
            ``extra['edge_action_valid']``) from the records: right for edge-first runs and
            ``--also-edge`` recordings (not where the edge executed without proposing first).
    """
    out: list[RouteInput] = []
    for t, rec in enumerate(episode):
        extra: dict[str, Any] = {"action_repeats": 0, "observation_repeats": 0}
        last_action = ""
        if t > 0:
            prev, last = episode[:t], episode[t - 1]
            last_action = str(last.get("action") or "")
            extra["action_repeats"] = sum(
                normalize_text(r.get("action") or "") == normalize_text(last_action)
                for r in prev[:-1]
            )
            # As the env node counts: every observation shown before the new one.
            seen = [r.get("observation", "") for r in prev]
            new_obs = normalize_text(last.get("next_observation", ""))
            extra["observation_repeats"] = sum(normalize_text(o) == new_obs for o in seen)
            extra["last_action_valid"] = bool(last.get("action_valid", False))
        ri = RouteInput(
            task=str(task if task is not None else rec.get("task") or ""),
            step=int(rec.get("step", t)),
            observation=str(rec.get("observation") or ""),
            last_action=last_action,
            history=[str(r.get("target")) for r in episode[:t] if r.get("target")],
            valid_actions=list(rec.get("valid_actions") or []),
            extra=extra,
        )
        if edge_proposal and rec.get("edge_action") is not None:
            ri.edge_action = str(rec["edge_action"])
            ri.edge_logprob = rec.get("edge_logprob")
            ri.edge_margin = rec.get("edge_margin")
            ri.extra["edge_action_valid"] = bool(rec.get("edge_valid"))
            edge = normalize_text(ri.edge_action)
            ri.extra["edge_action_done_before"] = sum(
                normalize_text(r.get("action") or "") == edge for r in episode[:t]
            )
        out.append(ri)
    return out


def imitation_dataset(
    records: Iterable[dict[str, Any]],
) -> tuple[list[RouteInput], np.ndarray, np.ndarray]:
    """Stage-1 training data from ``--also-edge`` step records.

    Returns:
        ``(states, needs_cloud, seeds)``: the decision-time inputs of the steps where both the
        edge and the cloud acted, the label ``1 - agree``, and each state's episode seed (for
        episode-level splits). Steps without ``agree`` are skipped (they still feed the repeat
        counts and history of later steps).
    """
    states: list[RouteInput] = []
    labels: list[float] = []
    seeds: list[int] = []
    for ep in split_episodes(records):
        for ri, rec in zip(route_inputs_from_records(ep), ep, strict=True):
            if rec.get("agree") is None:
                continue
            states.append(ri)
            labels.append(0.0 if rec["agree"] else 1.0)
            seeds.append(int(rec.get("seed", -1)))
    return states, np.asarray(labels), np.asarray(seeds, dtype=np.int64)
