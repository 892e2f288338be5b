"""Typed errors for tierserve.

Every error the gateway can return derives from :class:`TierserveError`, which carries the HTTP
status, an OpenAI-style error type, whether retrying may help, and a hint saying how to fix it::

    TierserveError
    ├── ConfigError            bad stack/serve configuration (raised at start-up, never HTTP)
    ├── InvalidRequestError    400: the client sent something we cannot serve
    │   ├── ContextLengthError 400: prompt + max_tokens exceed a tier's context window (the
    │   │                      ladder escalates to a tier with room; 400 when none has)
    │   └── ModelNotFoundError 404: the model named is not served here
    ├── AuthenticationError    401: a keyed policy got no key, or a key it does not know
    ├── PermissionDeniedError  403: the tenant may not use what it asked for
    ├── RateLimitError         429, retryable: the tenant's request or token budget is spent
    ├── ModelNotPreparedError  embedded model missing or failing verification
    ├── LeftEnginesError       engines of an earlier run still hold memory (start-up, never HTTP)
    ├── GpuNotVisibleError     a tier asks for GPUs torch cannot see (start-up, never HTTP)
    ├── DecisionLogError       503, retryable: the decision record could not be written, so
    │                          the answer is withheld (no response without its record)
    └── TierError              a tier failed while generating
        ├── TierUnavailableError   503, retryable: the tier is not up (yet)
        │   ├── TierBusyError      503, retryable: the tier's queue is full
        │   └── CircuitOpenError   503, retryable: the tier kept failing and is skipped
        └── TierTimeoutError       504, retryable: the tier did not answer in time
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigError",
    "ContextLengthError",
    "DecisionLogError",
    "GpuNotVisibleError",
    "InvalidRequestError",
    "LeftEnginesError",
    "ModelNotFoundError",
    "ModelNotPreparedError",
    "PermissionDeniedError",
    "RateLimitError",
    "TierBusyError",
    "TierError",
    "TierTimeoutError",
    "TierUnavailableError",
    "TierserveError",
]


class TierserveError(Exception):
    """Base of every tierserve error."""

    http_status: int = 500
    error_type: str = "server_error"
    code: str | None = None
    """OpenAI's error ``code`` where it has one, else a stable name of our own (never a class
    name: error bodies say what happened, not how tierserve is built)."""
    retryable: bool = False

    def __init__(self, message: str, *, hint: str = "", param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.hint})" if self.hint else self.message


class ConfigError(TierserveError):
    """The configuration is invalid; the message names the bad value and the fix."""


class InvalidRequestError(TierserveError):
    http_status = 400
    error_type = "invalid_request_error"
    code = "invalid_value"


class ContextLengthError(InvalidRequestError):
    """The request does not fit one tier's context window; another tier's may be larger."""

    code = "context_length_exceeded"

    def __init__(self, tier: str, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        super().__init__(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) exceeds the "
            f"{limit}-token context of tier {tier!r}",
            hint="shorten the messages or lower max_tokens",
            param="messages",
        )
        self.tier = tier
        self.limit = limit


class ModelNotFoundError(InvalidRequestError):
    http_status = 404
    code = "model_not_found"


class AuthenticationError(TierserveError):
    """No API key, or one the policy does not know, where keys are required. The message
    never repeats the key (OpenAI's quotes part of it; a log line of ours must not)."""

    http_status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str, *, hint: str, reason: str) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        """The reason code of the denial record: ``auth=missing_key`` or ``auth=unknown_key``."""

    @classmethod
    def of(cls, *, missing: bool) -> AuthenticationError:
        if missing:
            return cls(
                "no API key was sent, and this gateway requires one",
                hint="send the header 'Authorization: Bearer <key>'; the operator creates keys "
                "with `tierserve keys create`",
                reason="auth=missing_key",
            )
        return cls(
            "the API key sent is not known here",
            hint="check the key, or ask the operator for one",
            reason="auth=unknown_key",
        )


class PermissionDeniedError(TierserveError):
    http_status = 403
    error_type = "permission_error"
    code = "permission_denied"


class RateLimitError(TierserveError):
    """A tenant's request or token rate limit is spent; ``retry_after_s`` says when it frees."""

    http_status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, hint: str = "", retry_after_s: float) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class ModelNotPreparedError(TierserveError):
    """An embedded model has not been built, or its files fail verification."""


class LeftEnginesError(TierserveError):
    """Engine processes of an earlier run, whose replica is gone, still hold their memory;
    the message names their PIDs."""


class GpuNotVisibleError(TierserveError):
    """A tier asks for GPUs and torch sees none on its node; the message names torch's CUDA
    build and the NVIDIA driver found, against the driver that build needs."""


class RolloutError(TierserveError):
    """A change to a running stack (tierserve.serve.rollout) could not be made or did not
    finish; the stack keeps what it had where Serve could keep it."""


class DecisionLogError(TierserveError):
    http_status = 503
    code = "decision_log_unavailable"
    retryable = True


class TierError(TierserveError):
    def __init__(self, tier: str, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(f"tier {tier!r}: {message}", hint=hint)
        self.tier = tier
        self.detail = detail
        """What went wrong inside, for the decision log and the operator's logs; the caller's
        error body carries only the message."""


class TierUnavailableError(TierError):
    http_status = 503
    code = "tier_unavailable"
    retryable = True


class TierBusyError(TierUnavailableError):
    """The tier is up but its queue is at max_queued_requests: load, not a fault, so it does
    not count against the tier's circuit breaker."""

    code = "tier_busy"


class CircuitOpenError(TierUnavailableError):
    code = "tier_circuit_open"

    def __init__(self, tier: str, failures: int) -> None:
        super().__init__(
            tier,
            f"skipped after {failures} failures in a row",
            hint="retry later; check /healthz",
        )


class TierTimeoutError(TierError):
    http_status = 504
    code = "tier_timeout"
    retryable = True


def _rebuild(cls: type[TierserveError], state: dict[str, object]) -> TierserveError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


def _reduce(self: TierserveError) -> tuple[object, ...]:
    # Errors cross process boundaries (Ray Serve replicas); keyword-only __init__ arguments
    # would not survive the default exception pickling.
    return (_rebuild, (type(self), dict(self.__dict__)))


TierserveError.__reduce__ = _reduce  # type: ignore[method-assign,assignment]
