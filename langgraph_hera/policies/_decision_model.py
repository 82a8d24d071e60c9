"""A routing policy behind LangChain's decision-model interface (`BaseDecisionModel`).

The shared part of `langgraph_hera.routing.HeraDecisionModel` and of the ``langchain-router``
policy: it lives here, in the decision-time layer, so that a policy can use it without importing
the routing layer. LangChain's `ModelRouterMiddleware` asks its classifier one `Choice` question
about the latest human message; the policy's `Decision` answers it, and the answer carries that
decision.

How each question kind is answered (``p`` is p(cloud), see `cloud_probability`):

- `Choice`: its labels must include ``edge_choice`` and ``cloud_choice``; the answer is the
  label of the decision's target, with ``p`` / ``1 - p`` on those two labels and 0 on any other.
- `Noul` (binary): read as "does this state need the cloud model?"; the answer is ``p``.
- `Score`: the rubric is read as ordered from "the edge is enough" (level 0) to "needs the
  cloud" (last level); the answer is the policy's score (clipped to [0, 1]) stretched over the
  levels.
- `Box`: not answerable (a `ValueError`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.decisions import (
    BaseDecisionModel,
    Box,
    Choice,
    ChoiceAnswer,
    ClassifierResponse,
    Noul,
    NoulAnswer,
    Question,
    Score,
    ScoreAnswer,
    State,
)
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import ConfigDict, TypeAdapter

from langgraph_hera.policies.base import RouteInput, RoutingPolicy, get_policy
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import Decision

logger = get_logger(__name__)

#: What a decision model does when its policy raises: answer "cloud" (the safe choice, as the
#: router node does) or let the error end the run (as `ModelRouterMiddleware` prefers).
OnPolicyError = Literal["cloud", "raise"]
ON_POLICY_ERROR: tuple[OnPolicyError, ...] = ("cloud", "raise")

_QUESTION = TypeAdapter(Question)


class RoutedChoiceAnswer(ChoiceAnswer):
    """A `ChoiceAnswer` that also carries the routing `Decision` behind it.

    `ModelRouterMiddleware` stores the whole answer in the agent state (``model_route``), so
    ``out["model_route"].decision`` shows target, score, threshold, policy and reason.
    """

    decision: Decision


class RoutedNoulAnswer(NoulAnswer):
    """A `NoulAnswer` (p(cloud)) that also carries the routing `Decision` behind it."""

    decision: Decision


class RoutedScoreAnswer(ScoreAnswer):
    """A `ScoreAnswer` (the policy's score on the rubric) that also carries the `Decision`."""

    decision: Decision


def resolve_policy(policy: Any) -> RoutingPolicy:
    """A policy instance from an instance or a registered name.

    Raises:
        ValueError: An unknown name (the message lists the registered ones) or something that
            is neither a `RoutingPolicy` nor a string.
    """
    if isinstance(policy, RoutingPolicy):
        return policy
    if isinstance(policy, str):
        return get_policy(policy)
    raise ValueError(f"policy must be a RoutingPolicy or a registered name, got {policy!r}")


def state_messages(state: Any) -> list[BaseMessage]:
    """The messages in a decision model's state.

    Accepted: a string (one human message), a message, a sequence of messages, or a mapping with
    a ``messages`` list (LangChain agent state). `ModelRouterMiddleware` passes the latest
    human message alone.

    Raises:
        ValueError: Any other state (the message shows its type).
    """
    if isinstance(state, str):
        return [HumanMessage(state)]
    if isinstance(state, BaseMessage):
        return [state]
    if isinstance(state, Mapping) and "messages" in state:
        state = state["messages"]
    if isinstance(state, Sequence) and all(isinstance(m, BaseMessage) for m in state):
        return list(state)
    raise ValueError(
        "state must be a string, a message, a list of messages or a mapping with 'messages', "
        f"got {type(state).__name__}: {str(state)[:80]!r}"
    )


def cloud_probability(decision: Decision) -> float:
    """p(cloud) reported for a decision: the score rescaled so the threshold sits at 0.5.

    Piecewise linear on the score clipped to [0, 1]: ``0.5 * s / t`` below the threshold ``t``,
    ``0.5 + 0.5 * (s - t) / (1 - t)`` at or above it; so p >= 0.5 exactly when the decision is
    the cloud. Not a calibrated probability, an order-preserving one. Without a finite score
    and threshold (always-edge, a policy error) it is 1 for the cloud and 0 for the edge.
    """
    score, threshold = decision["score"], decision["threshold"]
    cloud = decision["target"] == "cloud"
    if threshold is None or not (math.isfinite(score) and math.isfinite(threshold)):
        return 1.0 if cloud else 0.0
    s = min(max(score, 0.0), 1.0)
    t = min(max(threshold, 0.0), 1.0)
    if s < t:
        p = 0.5 * s / t
    elif t < 1.0:
        p = 0.5 + 0.5 * (s - t) / (1.0 - t)
    else:
        p = 0.5
    return max(p, 0.5) if cloud else min(p, 0.5)


def _score_answer(question: Score, decision: Decision) -> RoutedScoreAnswer:
    levels = len(question.criteria)
    raw = decision["score"]
    unit = min(max(raw, 0.0), 1.0) if math.isfinite(raw) else cloud_probability(decision)
    x = unit * (levels - 1)
    low = min(int(math.floor(x)), levels - 1)
    high = min(low + 1, levels - 1)
    probabilities = {i: 0.0 for i in range(levels)}
    probabilities[low] += 1.0 - (x - low)
    probabilities[high] += x - low
    return RoutedScoreAnswer(
        type="score",
        score=x,
        legend=dict(enumerate(question.criteria)),
        probabilities=probabilities,
        confidence=max(probabilities.values()),
        decision=decision,
    )


class PolicyDecisionModel(BaseDecisionModel):
    """A `BaseDecisionModel` whose answers come from a routing policy's decision.

    This base class sees a state the task-level way: the latest human message is the task and
    nothing else (``RouteInput(task=...)``, step 0). `HeraDecisionModel` (in
    `langgraph_hera.routing`) builds the policy input from the whole conversation instead.

    Args:
        policy: A `RoutingPolicy` or a registered policy name.
        edge_choice: The `Choice` label meaning the edge model.
        cloud_choice: The `Choice` label meaning the cloud model.
        on_policy_error: ``"cloud"`` answers "cloud" when the policy raises (the decision's
            reason says so); ``"raise"`` lets the error propagate.
        model: Name reported as the classifier's model (default ``hera:<policy name>``).

    Raises:
        ValueError: An unknown policy name, empty or equal choice labels, or an unknown
            ``on_policy_error`` (each message shows the bad value).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    policy: RoutingPolicy
    edge_choice: str = "edge"
    cloud_choice: str = "cloud"
    on_policy_error: OnPolicyError = "cloud"

    def __init__(
        self,
        policy: RoutingPolicy | str,
        *,
        edge_choice: str = "edge",
        cloud_choice: str = "cloud",
        on_policy_error: OnPolicyError = "cloud",
        model: str | None = None,
    ) -> None:
        resolved = resolve_policy(policy)
        for name, value in (("edge_choice", edge_choice), ("cloud_choice", cloud_choice)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if edge_choice == cloud_choice:
            raise ValueError(f"edge_choice and cloud_choice must differ, both are {edge_choice!r}")
        if on_policy_error not in ON_POLICY_ERROR:
            raise ValueError(
                f"on_policy_error must be one of {ON_POLICY_ERROR}, got {on_policy_error!r}"
            )
        super().__init__(  # type: ignore[call-arg]  # pydantic fields of the subclass
            policy=resolved,
            edge_choice=edge_choice,
            cloud_choice=cloud_choice,
            on_policy_error=on_policy_error,
            model=model or f"hera:{resolved.name}",
        )

    @property
    def _provider(self) -> str:
        return "langgraph_hera"

    def route_input(self, state: Any) -> RouteInput:
        """The policy input for ``state``: the latest human message as the task.

        Raises:
            ValueError: An unsupported state (see `state_messages`).
        """
        messages = state_messages(state)
        human = [m for m in messages if isinstance(m, HumanMessage)]
        return RouteInput(task=str((human or messages or [HumanMessage("")])[-1].text))

    def decide(self, state: Any) -> Decision:
        """The policy's decision for ``state`` (a policy error gives "cloud" unless ``raise``).

        Raises:
            ValueError: An unsupported state.
            Exception: Whatever the policy raised, with ``on_policy_error="raise"``.
        """
        route_input = self.route_input(state)
        try:
            return self.policy.decide(route_input)
        except Exception as exc:
            if self.on_policy_error == "raise":
                raise
            logger.warning("policy %r failed: %s", self.policy.name, error_text(exc))
            return Decision(
                step=route_input.step,
                target="cloud",
                score=float("nan"),
                threshold=None,
                policy=self.policy.name,
                reason=f"policy error ({type(exc).__name__}); cloud as the safe choice",
                latency_ms=0.0,
            )

    def _check_questions(self, questions: Mapping[str, Any]) -> dict[str, Question]:
        """Questions as typed models, checked before the policy runs.

        Raises:
            ValueError: No questions, a `Box` question, or a `Choice` whose labels lack
                ``edge_choice`` or ``cloud_choice`` (the message names the question and labels).
        """
        if not questions:
            raise ValueError("a decision model needs at least one question, got none")
        checked: dict[str, Question] = {}
        for qid, raw in questions.items():
            question = raw if isinstance(raw, Noul | Choice | Score | Box) else None
            if question is None:
                question = _QUESTION.validate_python(raw)
            if isinstance(question, Box):
                raise ValueError(
                    f"question {qid!r} is a Box question; a routing policy answers Choice, "
                    "Noul and Score questions only"
                )
            if isinstance(question, Choice):
                labels = list(question.criteria)
                missing = [c for c in (self.edge_choice, self.cloud_choice) if c not in labels]
                if missing:
                    raise ValueError(
                        f"question {qid!r}: Choice labels {labels} lack {missing}; pass "
                        "edge_choice= / cloud_choice= naming the edge and cloud choices"
                    )
            checked[qid] = question
        return checked

    def answer(self, question: Question, decision: Decision) -> Any:
        """The typed answer to one (checked) question from ``decision``."""
        p = cloud_probability(decision)
        if isinstance(question, Choice):
            probabilities = {label: 0.0 for label in question.criteria}
            probabilities[self.edge_choice] = 1.0 - p
            probabilities[self.cloud_choice] = p
            cloud = decision["target"] == "cloud"
            return RoutedChoiceAnswer(
                type="choice",
                choice=self.cloud_choice if cloud else self.edge_choice,
                probabilities=probabilities,
                confidence=max(p, 1.0 - p),
                decision=decision,
            )
        if isinstance(question, Noul):
            return RoutedNoulAnswer(type="noul", noul=p, decision=decision)
        if isinstance(question, Score):
            return _score_answer(question, decision)
        raise ValueError(f"cannot answer a {type(question).__name__} question")

    def record(self, decision: Decision) -> None:
        """Called with every decision (a hook for tracing; does nothing here)."""

    def _classify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        checked = self._check_questions(questions)
        decision = self.decide(state)
        self.record(decision)
        return ClassifierResponse(
            model=self.model,
            answers={qid: self.answer(q, decision) for qid, q in checked.items()},
        )
