"""Output validators: schema, required fields, semantic rules, grounding, safety.

Pure functions of the answer text and a :class:`ValidationContext`.
"""

from tierserve.validate.checks import (
    ValidationContext,
    ValidationResult,
    run_validators,
)
from tierserve.validate.rules import SemanticRule, check_rules

__all__ = [
    "SemanticRule",
    "ValidationContext",
    "ValidationResult",
    "check_rules",
    "run_validators",
]
