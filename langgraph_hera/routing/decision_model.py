"""`HeraDecisionModel`: a routing policy as a LangChain decision model (`BaseDecisionModel`).

LangChain's `ModelRouterMiddleware` (beta) picks an agent's model once per run: in
``before_agent`` it asks its classifier one `Choice` question, whose labels are the middleware's
``choices`` and whose state is the latest human message, and uses the chosen label's model for
every model call of the run. `HeraDecisionModel` answers that question with a routing policy
(`HeraRouter`, `ThresholdRouter`, `TaskLevelRouter`, ...), so the middleware routes by it.
The answer stored in the agent state (``model_route``) carries the policy's `Decision`, and
each decision is traced as a ``route_decision`` child run with the ``hera_*`` metadata keys.

See `langgraph_hera.policies._decision_model` for how `Noul` and `Score` questions are answered.
"""

from __future__ import annotations

from typing import Any

from langgraph_hera.policies._decision_model import (
    PolicyDecisionModel,
    RoutedChoiceAnswer,
    RoutedNoulAnswer,
    RoutedScoreAnswer,
    state_messages,
)
from langgraph_hera.policies.base import RouteInput
from langgraph_hera.routing.features import route_input_from_messages
from langgraph_hera.state import Decision
from langgraph_hera.tracing import trace_decision

__all__ = ["HeraDecisionModel", "RoutedChoiceAnswer", "RoutedNoulAnswer", "RoutedScoreAnswer"]


class HeraDecisionModel(PolicyDecisionModel):
    """A routing policy answering LangChain's edge-vs-cloud questions about a state.

    The state (a string, a message, messages, or agent state with ``messages``) becomes the
    policy input by `route_input_from_messages`; the policy's `Decision` answers a `Choice`
    between ``edge_choice`` and ``cloud_choice`` (its target), a `Noul` (p(cloud)) and a
    `Score` (the policy's score). Sync (``invoke``) and async (``ainvoke``).

    A policy that raises gives "cloud", the safe choice, as the router node does (the
    decision's reason names the error type); ``on_policy_error="raise"`` lets the error end the
    run instead, as `ModelRouterMiddleware` does with classifier failures.

    Args:
        policy: A `RoutingPolicy` or a registered policy name (``"task-level"``, ``"hera"``...).
        edge_choice: The `Choice` label (the middleware's choice name) meaning the edge model.
        cloud_choice: The `Choice` label meaning the cloud model.
        on_policy_error: ``"cloud"`` (default) or ``"raise"``.
        model: Name reported as the classifier's model (default ``hera:<policy name>``).

    Raises:
        ValueError: An unknown policy name, empty or equal choice labels, or an unknown
            ``on_policy_error`` (each message shows the bad value). At call time: a state that
            is not text or messages, a `Box` question, or a `Choice` lacking either label.

    Example:
        >>> from langchain.agents import create_agent
        >>> from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
        >>> router = ModelRouterMiddleware(
        ...     choices={
        ...         "edge": ModelChoice(model=edge, criteria="Simple, well-scoped tasks."),
        ...         "cloud": ModelChoice(model=cloud, criteria="Hard, long tasks."),
        ...     },
        ...     instructions="Choose the least costly model suited to the task.",
        ...     classifier=HeraDecisionModel(TaskLevelRouter(0.5)),
        ... )
        >>> agent = create_agent(cloud, tools, middleware=[router])
        >>> agent.invoke({"messages": [("user", "...")]})["model_route"].decision["target"]
        'edge'
    """

    def route_input(self, state: Any) -> RouteInput:
        """The policy input for ``state``: `route_input_from_messages` of its messages.

        Raises:
            ValueError: A state that is not text, a message, messages or agent state.
        """
        return route_input_from_messages(state_messages(state))

    def record(self, decision: Decision) -> None:
        """Trace ``decision`` as a ``route_decision`` run under the classifier's run."""
        trace_decision(decision)
