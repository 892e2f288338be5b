"""A tier that asks for GPUs on a node where torch sees none is refused at start, saying why
(issue 32, finding 2), instead of being served on the CPU path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.config import TierConfig
from tierserve.engine.resolve import resolve_tier
from tierserve.errors import GpuNotVisibleError
from tierserve.hardware import HostCapability, check_gpus_visible, driver_version

GPU_TIER = TierConfig(name="large", model="/models/large", num_gpus=0.58)
OLD_DRIVER = HostCapability("cpu", "AVX2", cuda_build="13.0", nvidia_driver="550.54.15")


def test_a_driver_too_old_for_torchs_cuda_is_named_with_the_one_needed() -> None:
    with pytest.raises(GpuNotVisibleError) as refused:
        resolve_tier(GPU_TIER, OLD_DRIVER, Path("/cache"))
    assert str(refused.value) == (
        "tier 'large' asks for 0.58 GPU(s), but torch sees no GPU on this node: NVIDIA driver "
        "550.54.15 found; torch is built for CUDA 13.0, which needs NVIDIA driver >= 580.65.06 "
        "(fix: upgrade the GPU nodes' driver to 580.65.06 or newer)"
    )


@pytest.mark.parametrize(
    ("host", "says"),
    [
        (HostCapability("cpu", "AVX2"), "this torch is a CPU build (fix: run the GPU image"),
        (
            HostCapability("cpu", "AVX2", cuda_build="13.0"),
            "no NVIDIA driver is loaded (/proc/driver/nvidia/version is missing)",
        ),
        (
            HostCapability("cpu", "AVX2", cuda_build="12.8", nvidia_driver="570.124.06"),
            "CUDA_VISIBLE_DEVICES=",  # a driver new enough: the GPU itself is not visible
        ),
    ],
)
def test_every_other_reason_torch_sees_no_gpu_is_said(host: HostCapability, says: str) -> None:
    with pytest.raises(GpuNotVisibleError, match="sees no GPU on this node") as refused:
        check_gpus_visible("large", 1, host)
    assert says in str(refused.value)


def test_a_tier_without_gpus_or_a_node_with_them_passes() -> None:
    check_gpus_visible("small", 0, OLD_DRIVER)  # the CPU path, asked for
    check_gpus_visible("large", 1, HostCapability("cuda", "AVX2", "13.0", "580.65.06"))


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 07:09:00 UTC "
            "2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
            "580.65.06",
        ),
        (
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  "
            "(dvs-builder@U16-I3-B03-4-3)  Wed Feb 26 01:43:50 UTC 2025\n",
            "570.124.06",
        ),
        ("something else\n", None),
    ],
)
def test_the_driver_version_is_read_as_the_kernel_module_reports_it(
    tmp_path: Path, text: str, version: str | None
) -> None:
    source = tmp_path / "version"
    source.write_text(text)
    assert driver_version(source) == version
    assert driver_version(tmp_path / "missing") is None
