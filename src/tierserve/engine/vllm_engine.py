"""The real engine: vLLM's ``AsyncLLM`` behind the :class:`~tierserve.engine.Engine` protocol.

Imported only inside model-server replicas; vLLM spawns its engine-core process, so this module
must stay importable (no work at import time).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from tierserve.config import TierConfig
from tierserve.engine.resolve import ResolvedTier
from tierserve.engine.tool_parsing import ToolCalling, template_message
from tierserve.engine.types import (
    Generation,
    GenerationChunk,
    GenerationRequest,
    TokenLogprob,
)
from tierserve.errors import ContextLengthError, InvalidRequestError
from tierserve.structured import structured_outputs_args

__all__ = ["VLLMEngine"]


class VLLMEngine:
    def __init__(self, tier: TierConfig, resolved: ResolvedTier) -> None:
        from vllm.config import StructuredOutputsConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        options: dict[str, Any] = {
            name: value
            for name, value in (
                ("kv_cache_memory_bytes", tier.kv_cache_memory_bytes),
                ("gpu_memory_utilization", tier.gpu_memory_utilization),
                ("enable_prefix_caching", tier.enable_prefix_caching),
                ("max_num_seqs", tier.max_num_seqs),
            )
            if value is not None
        }
        if tier.parallel_workers > 1:
            # The replica's placement group holds one GPU per worker (see TierConfig.ray_options).
            options["distributed_executor_backend"] = "ray"
        # vLLM reads these in the engine-core process it spawns, which inherits our environment.
        os.environ["VLLM_REGEX_COMPILATION_TIMEOUT_S"] = str(
            tier.structured_output_compile_timeout_s
        )
        os.environ["VLLM_V1_USE_OUTLINES_CACHE"] = "1" if tier.structured_output_disk_cache else "0"
        args = AsyncEngineArgs(
            model=resolved.model_path,
            served_model_name=resolved.model_version,
            dtype=cast(Any, resolved.dtype),
            max_model_len=tier.max_model_len,
            enforce_eager=resolved.enforce_eager,
            tensor_parallel_size=tier.tensor_parallel_size,
            pipeline_parallel_size=tier.pipeline_parallel_size,
            structured_outputs_config=StructuredOutputsConfig(
                backend=tier.structured_output_backend
            ),
            **options,
            **tier.engine_args,
        )
        self.tier = tier.name
        self.model_version = resolved.model_version
        self.max_model_len = tier.max_model_len
        self._llm = AsyncLLM.from_engine_args(args)
        self._tokenizer = self._llm.get_tokenizer()
        self._tools = ToolCalling.of(tier, self._tokenizer, resolved.model_version)
        # Chat templates render and tokenize in milliseconds of CPU: in one worker thread (a fast
        # tokenizer must not be used from two threads at once), not on the replica's event loop.
        self._tokenizing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize")
        self.in_flight: set[str] = set()
        self.aborted = 0

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        messages: list[Any] = [template_message(m) for m in request.messages]
        options = self._tools.template_options(self.tier, request)
        ids = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False, **options
        )
        ids = cast(list[int], list(ids))
        if len(ids) + request.max_tokens > self.max_model_len:
            raise ContextLengthError(self.tier, len(ids), request.max_tokens, self.max_model_len)
        return ids

    def _sampling(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(**structured_outputs_args(request.json_schema))
        extras: dict[str, Any] = {
            name: value
            for name, value in (
                ("repetition_penalty", request.repetition_penalty),
                ("top_k", request.top_k),
                ("min_p", request.min_p),
                ("min_tokens", request.min_tokens),
                ("logit_bias", request.logit_bias),
            )
            if value is not None
        }
        return SamplingParams(
            structured_outputs=structured,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=list(request.stop) or None,
            seed=request.seed,
            ignore_eos=request.ignore_eos,
            frequency_penalty=request.frequency_penalty,
            presence_penalty=request.presence_penalty,
            # 0 = the sampled token's own log-probability only (what the gate reads).
            logprobs=request.top_logprobs or 0,
            output_kind=RequestOutputKind.DELTA,
            # Some tokenizers mark the tool-call tags special; the parser must see them.
            skip_special_tokens=not request.tools,
            **extras,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        loop = asyncio.get_running_loop()
        prompt_ids = await loop.run_in_executor(self._tokenizing, self._prompt_ids, request)
        started = time.monotonic()
        ttft: float | None = None
        logprobs: list[float] = []
        details: list[TokenLogprob] = []
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        spelled = 0
        last_tokens = 0
        last_details: tuple[TokenLogprob, ...] = ()
        finish_reason = "stop"
        try:
            sampling = self._sampling(request)
        except ValueError as error:
            raise self._invalid(error) from None
        self.in_flight.add(request.request_id)
        finished = False
        try:
            async for output in self._llm.generate(
                {"prompt_token_ids": prompt_ids}, sampling, request.request_id
            ):
                completion = output.outputs[0]
                if ttft is None and completion.token_ids:
                    ttft = time.monotonic() - started
                chunk_details: list[TokenLogprob] = []
                for token_id, candidates in zip(
                    completion.token_ids, completion.logprobs or [], strict=False
                ):
                    if candidates is not None:
                        logprobs.append(float(candidates[token_id].logprob))
                        if request.top_logprobs is not None:
                            chunk_details.append(
                                _token_logprob(token_id, candidates, request.top_logprobs)
                            )
                details.extend(chunk_details)
                texts.append(completion.text)
                spans.extend(_spans(spelled, completion.text, len(completion.token_ids)))
                spelled += len(completion.text)
                if output.finished:
                    finished = True
                    finish_reason = completion.finish_reason or "stop"
                    last_details = tuple(chunk_details)
                elif completion.text and not request.tools:
                    # A tool call is sent whole once read and checked, never as raw tags.
                    yield GenerationChunk(
                        text=completion.text,
                        tokens=len(completion.token_ids),
                        logprobs=tuple(chunk_details),
                    )
                last_tokens = len(completion.token_ids)
        except ValueError as error:
            raise self._invalid(error) from None
        finally:
            self.in_flight.discard(request.request_id)
            if not finished:
                # The caller went away (cancelled or closed the stream): free the engine slot.
                self.aborted += 1
                await self._llm.abort(request.request_id)
        latency = time.monotonic() - started
        text = "".join(texts)
        calls = self._tools.read(text, request) if request.tools else None
        final = Generation(
            tier=self.tier,
            model=self.model_version,
            text=text if calls is None else calls.content,
            token_logprobs=tuple(logprobs),
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(logprobs),
            finish_reason=finish_reason,
            ttft_s=latency if ttft is None else ttft,
            latency_s=latency,
            logprobs=_spelling(text, details),
            tool_calls=() if calls is None else calls.calls,
            unreadable_tool_call=calls is not None and calls.unreadable,
            token_spans=tuple(spans) if calls is None and len(spans) == len(logprobs) else (),
        )
        if calls is not None:  # nothing was streamed: the whole answer comes now
            last_text, last_tokens, last_details = final.text, len(logprobs), final.logprobs
        else:
            last_text = texts[-1] if texts else ""
            last_details = _spelling(last_text, last_details)
        yield GenerationChunk(
            text=last_text, final=final, tokens=last_tokens, logprobs=last_details
        )

    def _invalid(self, error: ValueError) -> InvalidRequestError:
        # vLLM refuses what it cannot serve with ValueError (an empty stop string, a seed out of
        # range, a grammar it cannot compile): the same input fails on every try and every
        # tier, so the caller gets a 400, not a retryable 503.
        reason = (str(error).strip().splitlines() or ["invalid parameters"])[0][:200]
        return InvalidRequestError(
            f"tier {self.tier!r} refused the request: {reason}",
            hint="correct the request's sampling parameters, stop sequences or response_format",
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        async for chunk in self.stream(request):
            if chunk.final is not None:
                return chunk.final
        raise RuntimeError("engine stream ended without a final chunk")  # pragma: no cover

    async def healthy(self) -> None:
        await self._llm.check_health()

    def shutdown(self) -> None:
        self._tokenizing.shutdown(wait=False)
        self._llm.shutdown()


def _token_logprob(token_id: int, candidates: Any, top: int) -> TokenLogprob:
    """vLLM's ``{token id: Logprob}`` at one position (the sampled token and the ``top``
    likeliest, each with its rank) as OpenAI shows it."""
    sampled = candidates[token_id]
    ranked = sorted(
        (c for c in candidates.values() if c.rank is not None and c.rank <= top),
        key=lambda c: c.rank,
    )
    return TokenLogprob(
        token=sampled.decoded_token or "",
        logprob=float(sampled.logprob),
        top=tuple((c.decoded_token or "", float(c.logprob)) for c in ranked[:top]),
    )


def _spans(start: int, text: str, tokens: int) -> list[tuple[int, int]]:
    """The character spans of one output's ``tokens``. One token owns the output's text; tokens
    delivered together (a step's output read late) each get the whole batch's span, which can
    only make a field's confidence more cautious, never less."""
    return [(start, start + len(text))] * tokens


def _spelling(text: str, details: Sequence[TokenLogprob]) -> tuple[TokenLogprob, ...]:
    """The tokens a caller sees for ``text``: without the trailing stop token (an end-of-turn
    token such as ``<|im_end|>``), which ends the generation but is not part of its text."""
    kept = list(details)
    spelled = sum(len(t.token) for t in kept)
    while kept and spelled > len(text):
        spelled -= len(kept.pop().token)
    return tuple(kept)
