"""The model names clients send: ``<model_name>`` runs the cascade, ``<model_name>/<tier>`` pins
one tier. Built and parsed here only."""

from __future__ import annotations

__all__ = ["pinned_model", "split_model"]

_SEPARATOR = "/"


def pinned_model(model_name: str, tier: str) -> str:
    """The name that pins ``tier``, e.g. ``tierserve/small``."""
    return f"{model_name}{_SEPARATOR}{tier}"


def split_model(model: str) -> tuple[str, str | None]:
    """(the gateway's model name, the pinned tier or None): ``tierserve/small`` gives
    ``("tierserve", "small")``, ``tierserve`` gives ``("tierserve", None)``."""
    base, separator, tier = model.partition(_SEPARATOR)
    return base, (tier if separator else None)
