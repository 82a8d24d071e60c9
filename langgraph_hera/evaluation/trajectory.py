"""Old home of the trajectory schema; it now lives in `langgraph_hera.training.trajectory`."""

from langgraph_hera.training.trajectory import STEP_SCHEMA, iter_steps, write_parquet

__all__ = ["STEP_SCHEMA", "iter_steps", "write_parquet"]
