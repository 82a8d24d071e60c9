"""Cloud supervision of an edge executor: PEVR (Plan-Execute-Verify-Replan) and EVA
(Execute-Verify-Advise), with verification every ``T_v`` executor steps and context resets."""

from langgraph_hera.supervision.graph import create_supervised_agent, create_supervised_text_agent
from langgraph_hera.supervision.node import MODES, create_supervisor_node, transcript
from langgraph_hera.supervision.prompts import parse_verdict
from langgraph_hera.supervision.stand_in import ExpertSupervisor, expert_plan

__all__ = [
    "MODES",
    "ExpertSupervisor",
    "create_supervised_agent",
    "create_supervised_text_agent",
    "create_supervisor_node",
    "expert_plan",
    "parse_verdict",
    "transcript",
]
