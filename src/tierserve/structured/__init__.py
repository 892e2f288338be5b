"""Outlines adapter: an output type (JSON schema or Pydantic model) -> vLLM's constrained
decoding parameters, and the check that Outlines can express a schema (used by the gateway on
callers' schemas and by policy loading on named ones). The policy core never imports it."""

from tierserve.structured.outlines_adapter import compile_check, structured_outputs_args

__all__ = ["compile_check", "structured_outputs_args"]
