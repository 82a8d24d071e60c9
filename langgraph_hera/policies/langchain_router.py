"""LangChain's task-level router, `ModelRouterMiddleware` (beta), as a routing policy.

A bench baseline next to ours: ``hera bench --policies langchain-router,threshold``.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any, ClassVar

from langgraph_hera.policies.base import RouteInput, RoutingPolicy, register_policy
from langgraph_hera.policies.baselines import TaskLevelRouter
from langgraph_hera.state import Decision, Target

#: How `hera bench` reports name this policy.
TITLE = "LangChain ModelRouterMiddleware (task-level)"

#: The middleware's choices: label -> criteria (what the label's model is for).
CRITERIA = {
    "edge": "Simple, well-scoped tasks the small edge model can finish alone.",
    "cloud": "Hard or long tasks that need the large cloud model.",
}
INSTRUCTIONS = "Choose the least costly model suited to the task."


@functools.cache
def _placeholder_model_class() -> type:
    """A chat model class standing in for each `ModelChoice.model` (never called)."""
    from langchain_core.language_models import BaseChatModel

    class ChoicePlaceholder(BaseChatModel):
        """Fills `ModelChoice.model`: the policy only classifies, the runner calls the model."""

        label: str

        @property
        def _llm_type(self) -> str:
            return "langchain-router-placeholder"

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(
                f"the langchain-router policy only picks {self.label!r}; the agent calls the "
                "edge or cloud model itself"
            )

    return ChoicePlaceholder


@register_policy("langchain-router")
class LangChainRouter(RoutingPolicy):
    """LangChain's `ModelRouterMiddleware`: one edge-or-cloud choice per task, from the task.

    At every step this runs the middleware's own ``before_agent`` (the code path a
    ``create_agent`` run takes once, before its first model call) on a state holding the task
    as the only human message: the middleware asks its classifier its `Choice` question
    between ``"edge"`` and ``"cloud"`` (criteria `CRITERIA`, instructions `INSTRUCTIONS`), and
    the chosen label is the step's target. The classifier sees the task alone, so every step of
    a task gets the answer of its first step (task-level, as the middleware keeps one answer
    per run), with nothing remembered between steps or tasks.

    The classifier: LangChain ships no concrete decision model (``langchain_core.decisions``
    has only `BaseDecisionModel`; providers implement it), and the middleware has no default.
    So the classifier is the project's `TaskLevelRouter` (HybridLLM-style, on the task text)
    behind `PolicyDecisionModel`, the base of `HeraDecisionModel`; ``classifier=`` swaps in
    any other policy. The middleware's own models are placeholders that are never called: the
    episode runner calls the edge or the cloud model as the decision says.

    On ``twc`` every game states the same task, so any task-level router (this one, like
    ``task-level``) plays all of a bench either on the edge or on the cloud at a given
    threshold: the baseline shows what step-level routing adds over a per-request choice.

    Needs ``langchain`` (``pip install 'langchain>=1.5'``), imported when the policy is made.

    Args:
        threshold: The `TaskLevelRouter`'s threshold (cloud when its score >= threshold;
            default 0.5, or the saved one with ``path``).
        path: A `TaskLevelRouter` saved by its ``save`` (a fitted router).
        classifier: Any other policy (or registered name) as the classifier, instead of the
            `TaskLevelRouter`; then ``threshold`` and ``path`` must be left out.

    Raises:
        ValueError: ``classifier`` together with ``threshold`` or ``path``, a classifier that
            is not a policy, or an unknown policy name (each message shows the bad value).
        ImportError: ``langchain`` is not installed.

    Example:
        >>> policy = LangChainRouter(threshold=0.3)
        >>> policy.decide(RouteInput(task="make a meal", step=4))["target"]
        'edge'
    """

    title: ClassVar[str] = TITLE

    def __init__(
        self,
        threshold: float | None = None,
        *,
        path: str | None = None,
        classifier: RoutingPolicy | str | None = None,
    ) -> None:
        from langgraph_hera.policies._decision_model import PolicyDecisionModel, resolve_policy

        if classifier is not None:
            if threshold is not None or path is not None:
                raise ValueError(
                    "pass classifier= or threshold= / path=, not both (got classifier="
                    f"{classifier!r}, threshold={threshold!r}, path={path!r})"
                )
            inner = resolve_policy(classifier)
        elif path is not None:
            inner = TaskLevelRouter.load(path)
            if threshold is not None:
                inner.threshold = float(threshold)
        else:
            inner = TaskLevelRouter(0.5 if threshold is None else threshold)
        self.classifier = inner
        self.threshold = inner.threshold
        self._middleware = _model_router(
            PolicyDecisionModel(inner, on_policy_error="raise")  # errors reach the router node
        )
        from langgraph.runtime import Runtime

        self._runtime = Runtime()

    def decide(self, route_input: RouteInput) -> Decision:
        """The middleware's choice for the task of ``route_input`` (the same at every step)."""
        from langchain_core.messages import HumanMessage

        start = time.perf_counter()
        update = self._middleware.before_agent(
            {"messages": [HumanMessage(route_input.task)]}, self._runtime
        )
        answer = update["model_route"]
        inner: Decision = answer.decision
        target: Target = "cloud" if answer.choice == "cloud" else "edge"
        return Decision(
            step=route_input.step,
            target=target,
            score=inner["score"],
            threshold=inner["threshold"],
            policy=self.name,
            reason=(
                f"ModelRouterMiddleware chose {answer.choice!r} for the task "
                f"(p(cloud) {answer.probabilities['cloud']:.3f}; {inner['policy']}: "
                f"{inner['reason']})"
            ),
            latency_ms=(time.perf_counter() - start) * 1e3,
        )

    def score(self, route_input: RouteInput) -> float:
        """The classifier's score for the task (what `decide` compares)."""
        return float(self.decide(route_input)["score"])

    def __repr__(self) -> str:
        return f"LangChainRouter(classifier={self.classifier!r})"


def _model_router(classifier: Any) -> Any:
    """LangChain's `ModelRouterMiddleware` over ``classifier``, edge and cloud choices."""
    try:
        from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
        from langchain_core._api import LangChainBetaWarning
    except ImportError as exc:
        raise ImportError(
            "the langchain-router policy needs langchain>=1.5 (pip install 'langchain>=1.5')"
        ) from exc
    placeholder = _placeholder_model_class()
    choices = {
        label: ModelChoice(model=placeholder(label=label), criteria=criteria)
        for label, criteria in CRITERIA.items()
    }
    with warnings.catch_warnings():  # beta: the bench would repeat it once per episode
        warnings.simplefilter("ignore", LangChainBetaWarning)
        return ModelRouterMiddleware(
            choices=choices, instructions=INSTRUCTIONS, classifier=classifier
        )
