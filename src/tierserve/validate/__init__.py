"""Output validators: schema, required fields, semantic rules, grounding, safety, tool calls.

Pure functions of the answer text and a :class:`ValidationContext`.
"""

from tierserve.validate.checks import (
    Output,
    ValidationContext,
    ValidationResult,
    run_validators,
)
from tierserve.validate.rules import SemanticRule, check_rules
from tierserve.validate.tool_args import ProposedCall, ToolContract

__all__ = [
    "Output",
    "ProposedCall",
    "SemanticRule",
    "ToolContract",
    "ValidationContext",
    "ValidationResult",
    "check_rules",
    "run_validators",
]
