"""The engine seam: the protocol the cascade talks to, and its vLLM implementation."""

from tierserve.engine.types import (
    ChatMessage,
    Engine,
    Generation,
    GenerationChunk,
    GenerationRequest,
)

__all__ = ["ChatMessage", "Engine", "Generation", "GenerationChunk", "GenerationRequest"]
