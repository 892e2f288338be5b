"""Scripted engines for unit tests of pure code (never used by integration tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tierserve.engine.types import Generation, GenerationChunk, GenerationRequest


@dataclass
class ScriptedEngine:
    """Answers every request with fixed text and per-token log-probabilities."""

    tier: str
    text: str = "Paris."
    logprobs: tuple[float, ...] = (-0.1, -0.2)
    error: Exception | None = None
    requests: list[GenerationRequest] = field(default_factory=list)

    def _generation(self) -> Generation:
        return Generation(
            tier=self.tier,
            model=f"fake/{self.tier}",
            text=self.text,
            token_logprobs=self.logprobs,
            prompt_tokens=7,
            completion_tokens=len(self.logprobs),
            finish_reason="stop",
            ttft_s=0.01,
            latency_s=0.02,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self._generation()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        words = self.text.split(" ")
        for index, word in enumerate(words[:-1]):
            yield GenerationChunk(text=word + " " if index < len(words) - 1 else word)
        yield GenerationChunk(text=words[-1], final=self._generation())
