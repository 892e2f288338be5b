"""Heavy model-building steps, each run in its own process by ``tierserve models prepare``.

Run as ``python -m tierserve.models.build dequantize|quantize ...``. Kept out of the serving
process: transformers' GGUF loader and AutoRound peak at several GB and import a lot.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tierserve.models.calibration import calibration_texts

SCHEMES = {
    # format name -> (AutoRound scheme, AutoRound export format)
    "gptq-w4a16": ("W4A16", "auto_gptq"),
    "int8-w8a8": ("INT8", "llm_compressor"),
}


def dequantize(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers refuses to save a model "quantized with GGUF" until the quantizer is detached;
    # the weights are already dequantized to float32 at this point.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def quantize(fp32_dir: Path, out: Path, fmt: str, group_size: int, iters: int) -> None:
    import torch
    from auto_round import AutoRound
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scheme, export_format = SCHEMES[fmt]
    tokenizer = AutoTokenizer.from_pretrained(fp32_dir)
    model = AutoModelForCausalLM.from_pretrained(fp32_dir, dtype=torch.float32)
    options: dict[str, object] = {}
    if fmt == "gptq-w4a16":
        options["group_size"] = group_size
    rounder = AutoRound(
        model,
        tokenizer,
        scheme=scheme,
        iters=iters,
        dataset=calibration_texts(),
        nsamples=32,
        seqlen=256,
        device_map="cpu",
        **options,
    )
    staging = out.with_name(out.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    rounder.quantize_and_save(str(staging), format=export_format)
    # AutoRound writes into a subfolder named after the model and scheme; flatten it.
    written = [p.parent for p in staging.rglob("config.json")]
    if len(written) != 1:
        raise RuntimeError(f"expected one checkpoint under {staging}, found {written}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(written[0]), str(out))
    shutil.rmtree(staging, ignore_errors=True)
    # The tokenizer may not be copied by every export format; vLLM needs it beside the weights.
    if not (out / "tokenizer_config.json").exists():
        tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tierserve.models.build")
    sub = parser.add_subparsers(dest="step", required=True)
    deq = sub.add_parser("dequantize")
    deq.add_argument("--gguf", type=Path, required=True)
    deq.add_argument("--out", type=Path, required=True)
    qua = sub.add_parser("quantize")
    qua.add_argument("--src", type=Path, required=True)
    qua.add_argument("--out", type=Path, required=True)
    qua.add_argument("--format", choices=sorted(SCHEMES), required=True)
    qua.add_argument("--group-size", type=int, default=128)
    qua.add_argument("--iters", type=int, default=0)
    args = parser.parse_args()
    if args.step == "dequantize":
        dequantize(args.gguf, args.out)
    else:
        quantize(args.src, args.out, args.format, args.group_size, args.iters)
    print(json.dumps({"step": args.step, "out": str(args.out)}))


if __name__ == "__main__":
    main()
