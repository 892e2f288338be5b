"""A policy's file form: what ``policy/versions.py`` writes when it writes a policy back.

Loading inlines what a policy file names (schema files, prompt models' weights), adds API keys
from the environment and binds the stack's tiers, so a loaded policy travels as data. Written
back, each part takes its file form again: the files named, the keys left in the environment,
no tiers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

__all__ = ["POLICY_FILE", "FileForm"]

POLICY_FILE = {"policy_file": True}
"""The serialization context of ``model_dump`` that writes a policy's file form."""


class FileForm(BaseModel):
    """A part of a policy whose file form differs from its loaded data."""

    def file_form(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (this part dumped) as the policy file holds it."""
        return data

    @model_serializer(mode="wrap")
    def _dumped(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if info.context and info.context.get("policy_file"):
            return self.file_form(data)
        return data
