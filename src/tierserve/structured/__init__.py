"""Outlines adapter: an output type (JSON schema or Pydantic model) -> vLLM's constrained
decoding parameters. Imported by the engine side only; the policy core never needs it."""

from tierserve.structured.outlines_adapter import compile_check, structured_outputs_args

__all__ = ["compile_check", "structured_outputs_args"]
