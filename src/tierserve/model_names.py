"""The model names clients send: ``<model_name>`` runs the cascade, ``<model_name>/<tier>`` pins
one tier. Built and parsed here only."""

from __future__ import annotations

from collections.abc import Sequence

from tierserve.errors import ModelNotFoundError

__all__ = ["pinned_model", "pinned_tier", "served_models", "split_model"]

_SEPARATOR = "/"


def pinned_model(model_name: str, tier: str) -> str:
    """The name that pins ``tier``, e.g. ``tierserve/small``."""
    return f"{model_name}{_SEPARATOR}{tier}"


def split_model(model: str) -> tuple[str, str | None]:
    """(the gateway's model name, the pinned tier or None): ``tierserve/small`` gives
    ``("tierserve", "small")``, ``tierserve`` gives ``("tierserve", None)``."""
    base, separator, tier = model.partition(_SEPARATOR)
    return base, (tier if separator else None)


def served_models(model_name: str, tiers: Sequence[str]) -> list[str]:
    """Every name a client may send: the cascade's, then one per tier."""
    return [model_name, *(pinned_model(model_name, tier) for tier in tiers)]


def pinned_tier(model: str, model_name: str, tiers: Sequence[str]) -> str | None:
    """The tier ``model`` pins, None for the cascade; a name not served here is a 404."""
    served = served_models(model_name, tiers)
    if model not in served:
        raise ModelNotFoundError(
            "the requested model is not served here",
            hint=f"use one of {served} (GET /v1/models lists them)",
            param="model",
        )
    return split_model(model)[1]
