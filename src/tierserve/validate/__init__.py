"""Output validators: schema, required fields, grounding, safety. Pure functions of the text."""

from tierserve.validate.checks import ValidationContext, ValidationResult, run_validators

__all__ = ["ValidationContext", "ValidationResult", "run_validators"]
