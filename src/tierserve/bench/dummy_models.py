"""Real architectures with no weights, so a GPU serving benchmark needs no model download.

vLLM's ``load_format: dummy`` builds the model from ``config.json`` and fills its weights at
random: speed and memory are those of the real model (same shapes, same kernels, same KV cache
per token), the answers are noise. A checkpoint folder here is the architecture's config plus a
Qwen2.5 tokenizer (all Qwen2.5 sizes share one), a few megabytes in all, which fits in one call
to a GPU machine that has no network.

``python -m tierserve.bench.dummy_models CONFIG --tokenizer DIR --out DIR`` writes the folders
and a copy of the serve config whose tiers load them; ``tierserve bench`` runs on that copy.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tierserve.config import read_yaml
from tierserve.errors import ConfigError

__all__ = ["ARCHITECTURES", "TOKENIZER_FILES", "dummy_serve_config", "write_checkpoint"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")
OPTIONAL_TOKENIZER_FILES = ("chat_template.jinja", "vocab.json", "merges.txt")

_QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "use_sliding_window": False,
    "sliding_window": 32768,
    "max_window_layers": 28,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}
_GPTQ_INT4 = {
    "quant_method": "gptq",
    "bits": 4,
    "group_size": 128,
    "desc_act": False,
    "sym": True,
    "damp_percent": 0.01,
    "true_sequential": True,
    "static_groups": False,
}

# The published config.json of each checkpoint the GPU serve configs name (shapes only).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4": {
        **_QWEN2,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "quantization_config": _GPTQ_INT4,
    },
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4": {
        **_QWEN2,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "quantization_config": _GPTQ_INT4,
    },
    "Qwen/Qwen2.5-14B-Instruct": {
        **_QWEN2,
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 48,
        "max_window_layers": 48,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
    },
}


def _folder_name(model: str) -> str:
    return model.replace("/", "--")


def write_checkpoint(model: str, tokenizer_dir: Path, out: Path) -> Path:
    """``out/<model>``: the architecture's config.json and the tokenizer's files."""
    if model not in ARCHITECTURES:
        raise ConfigError(
            f"no dummy architecture for {model!r}",
            hint=f"add its config.json shapes to ARCHITECTURES; known: {sorted(ARCHITECTURES)}",
        )
    missing = [name for name in TOKENIZER_FILES if not (tokenizer_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"{tokenizer_dir} lacks the tokenizer files {missing}",
            hint="pass a Qwen2.5 checkpoint folder, e.g. the embedded "
            "~/.cache/tierserve/models/qwen2.5-coder-0.5b-instruct/fp32",
        )
    folder = out / _folder_name(model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(ARCHITECTURES[model], indent=2) + "\n")
    for name in TOKENIZER_FILES + OPTIONAL_TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, folder / name)
    return folder


def dummy_serve_config(serve_config: Path, tokenizer_dir: Path, out: Path) -> dict[str, Any]:
    """The serve config with each tier on a weightless folder of its model's architecture."""
    data = read_yaml(serve_config)
    try:
        tiers = data["applications"][0]["args"]["tiers"]
    except (KeyError, IndexError, TypeError):
        raise ConfigError(
            f"{serve_config} has no applications[0].args.tiers",
            hint="pass a Ray Serve config such as serve_configs/gpu-single-80gb.yaml",
        ) from None
    for tier in tiers:
        tier["model"] = str(write_checkpoint(tier["model"], tokenizer_dir, out))
        tier.setdefault("engine_args", {})["load_format"] = "dummy"
    return dict(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="e.g. serve_configs/gpu-single-80gb.yaml")
    parser.add_argument("--tokenizer", type=Path, required=True, help="a Qwen2.5 folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = dummy_serve_config(args.config, args.tokenizer, args.out)
    path = args.out / "serve_config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
