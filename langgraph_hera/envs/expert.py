"""`ExpertChatModel`: the offline cloud stand-in, a chat model that answers with the expert action.

There is no cloud model on these machines. The stand-in plays the cloud's part in a routed
episode: it answers every call with the environment's expert action (a planner, not a language
model) and reports the token usage a GPT-4o call with the same prompt would have had, so cost
accounting, routing and tracing run exactly as they would against a real cloud model. Its
results are an upper bound on what a cloud model achieves; every output that uses it says so.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, model_validator

STAND_IN_LABEL = "expert stand-in"


@lru_cache(maxsize=1)
def _encoder() -> Any | None:
    """GPT-4o's tokenizer (tiktoken ``o200k_base``) when it is available offline, else None."""
    try:
        import tiktoken

        return tiktoken.get_encoding("o200k_base")
    except Exception:  # not installed, or the BPE file cannot be fetched (no network)
        return None


def count_tokens(text: str) -> tuple[int, str]:
    """Tokens of ``text`` as GPT-4o would count them.

    Returns:
        ``(count, method)``: ``method`` is ``"tiktoken:o200k_base"`` when the tokenizer is
        available, else ``"estimate:chars/4"`` (OpenAI's rule of thumb for English).
    """
    enc = _encoder()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=())), "tiktoken:o200k_base"
    return math.ceil(len(text) / 4), "estimate:chars/4"


#: Per-message overhead of the chat format (OpenAI's cookbook figure for gpt-4o).
_TOKENS_PER_MESSAGE = 3


def stand_in_reply(
    messages: Sequence[BaseMessage], text: str, model_name: str, **metadata: Any
) -> AIMessage:
    """A stand-in's reply: ``text`` with the usage a ``model_name`` call with the same prompt
    would have reported (GPT-4o token counts) and ``response_metadata["stand_in"]``."""
    n_in = 3  # reply priming
    method = ""
    for m in messages:
        count, method = count_tokens(m.text if isinstance(m.text, str) else str(m.content))
        n_in += count + _TOKENS_PER_MESSAGE
    n_out, method = count_tokens(text)
    return AIMessage(
        content=text,
        usage_metadata={
            "input_tokens": n_in,
            "output_tokens": n_out,
            "total_tokens": n_in + n_out,
        },
        response_metadata={
            "model_name": model_name,
            "stand_in": STAND_IN_LABEL,
            "token_count": method,
            **metadata,
        },
    )


class ExpertChatModel(BaseChatModel):
    """A chat model that answers with the environment's expert action (the cloud stand-in).

    Args:
        expert: Returns the expert's next action for the current state (the environment's
            planner, e.g. ``env.expert_action``). ``oracle=`` is its old name (deprecated).
        valid_actions: Returns the valid actions now; needed only when ``epsilon > 0``.
        epsilon: Probability of answering with a uniformly random valid action instead (to
            model a cloud model that is strong but not perfect).
        seed: Seed of the random choice.
        model_name: Name reported in ``response_metadata`` and priced by the ledger (the
            stand-in is priced as the cloud model it replaces, GPT-4o by default).

    Every reply carries ``usage_metadata`` (GPT-4o token counts of the prompt and the action)
    and ``response_metadata["stand_in"] = "expert stand-in"``.

    Example:
        >>> env = make_env("twc"); env.reset(10000)  # doctest: +SKIP
        >>> cloud = ExpertChatModel(expert=env.expert_action)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    expert: Callable[[], str]
    valid_actions: Callable[[], Sequence[str]] | None = None
    epsilon: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None
    model_name: str = "gpt-4o"

    @model_validator(mode="before")
    @classmethod
    def _renamed_oracle(cls, data: Any) -> Any:
        # "oracle" names the routing bound (evaluation.metrics); the planner is the expert.
        if isinstance(data, dict) and "oracle" in data:
            warnings.warn(
                "ExpertChatModel(oracle=...) is deprecated: use expert=... instead",
                DeprecationWarning,
                stacklevel=4,
            )
            data = {**data}
            data.setdefault("expert", data.pop("oracle"))
        return data

    @property
    def oracle(self) -> Callable[[], str]:
        """Deprecated: the old name of ``expert``."""
        warnings.warn(
            "ExpertChatModel.oracle is deprecated: use .expert", DeprecationWarning, stacklevel=2
        )
        return self.expert

    def model_post_init(self, __context: Any) -> None:
        if self.epsilon > 0 and self.valid_actions is None:
            raise ValueError("ExpertChatModel: epsilon > 0 needs valid_actions=callable")
        self._rng = random.Random(self.seed)

    @property
    def _llm_type(self) -> str:
        return "hera-expert-stand-in"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "epsilon": self.epsilon, "stand_in": True}

    def _action(self) -> tuple[str, bool]:
        if self.epsilon > 0 and self.valid_actions is not None:
            valid = list(self.valid_actions())
            if valid and self._rng.random() < self.epsilon:
                return self._rng.choice(valid), True
        return str(self.expert()), False

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        action, randomised = self._action()
        message = stand_in_reply(messages, action, self.model_name, epsilon_action=randomised)
        return ChatResult(generations=[ChatGeneration(message=message)])
