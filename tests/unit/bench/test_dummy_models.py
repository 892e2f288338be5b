"""Weightless checkpoints for the GPU benchmark: real shapes, a serve config that loads them."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierserve.bench.dummy_models import (
    ARCHITECTURES,
    TOKENIZER_FILES,
    dummy_serve_config,
    main,
    write_checkpoint,
)
from tierserve.config import read_serve_config
from tierserve.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]

# Parameter counts from each model's card (billions).
PUBLISHED_PARAMETERS = {
    "Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4": 1.54,
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4": 7.61,
    "Qwen/Qwen2.5-14B-Instruct": 14.7,
}


def _parameters(config: dict[str, Any]) -> float:
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    heads, kv = int(config["num_attention_heads"]), int(config["num_key_value_heads"])
    head_dim = hidden // heads
    embeddings = int(config["vocab_size"]) * hidden * (1 if config["tie_word_embeddings"] else 2)
    attention = 2 * hidden * hidden + 2 * hidden * kv * head_dim + hidden + 2 * kv * head_dim
    layer = attention + 3 * hidden * inter + 2 * hidden
    return (embeddings + int(config["num_hidden_layers"]) * layer + hidden) / 1e9


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    for name in TOKENIZER_FILES:
        (folder / name).write_text("{}")
    return folder


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
def test_each_architecture_has_the_published_size_and_quantizable_shapes(model: str) -> None:
    config = ARCHITECTURES[model]
    assert _parameters(config) == pytest.approx(PUBLISHED_PARAMETERS[model], rel=0.02)
    quantization = config.get("quantization_config")
    if quantization is not None:  # GPTQ groups must tile every quantized input width
        for width in (config["hidden_size"], config["intermediate_size"]):
            assert width % quantization["group_size"] == 0


def test_the_gpu_config_becomes_one_on_weightless_folders_that_still_validates(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    config = ROOT / "serve_configs/gpu-single-80gb.yaml"
    out = tmp_path / "dummy"
    assert main([str(config), "--tokenizer", str(tokenizer_dir), "--out", str(out)]) == 0
    derived = out / "serve_config.yaml"
    app = read_serve_config(derived)
    original = read_serve_config(config)
    for tier, before in zip(app.stack.tiers, original.stack.tiers, strict=True):
        folder = Path(tier.model)
        assert folder.parent == out and tier.engine_args["load_format"] == "dummy"
        assert json.loads((folder / "config.json").read_text()) == ARCHITECTURES[before.model]
        assert (folder / "tokenizer.json").is_file()
        assert tier.quantization == before.quantization
        assert tier.gpu_memory_utilization == before.gpu_memory_utilization


def test_an_unknown_model_or_a_folder_without_a_tokenizer_is_named(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="no dummy architecture for 'acme/giant'"):
        write_checkpoint("acme/giant", tokenizer_dir, tmp_path)
    with pytest.raises(ConfigError, match="lacks the tokenizer files"):
        write_checkpoint("Qwen/Qwen2.5-14B-Instruct", tmp_path, tmp_path / "out")
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"applications": []}))
    with pytest.raises(ConfigError, match="has no applications"):
        dummy_serve_config(config, tokenizer_dir, tmp_path)
