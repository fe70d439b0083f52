"""Automatic settings settled per device: workers, precision, memory format."""

import pytest

from seco.errors import ConfigError
from seco.train.config import PretrainConfig, for_device
from seco.train.distributed import cpus_per_process


def test_auto_settings_per_device() -> None:
    cfg = PretrainConfig(store="s", out="o")
    assert (cfg.num_workers, cfg.precision, cfg.channels_last) == ("auto", "auto", None)
    cpu = for_device(cfg, "cpu", cpus=16)
    assert (cpu.num_workers, cpu.precision, cpu.channels_last) == (0, "fp32", False)
    gpu = for_device(cfg, "cuda", cpus=16)
    assert (gpu.num_workers, gpu.precision, gpu.channels_last) == (15, "bf16", True)
    assert for_device(cfg, "cuda", cpus=1).num_workers == 1
    assert for_device(cfg, "cuda", cpus=16, bf16_ok=False).precision == "fp32"
    paper = PretrainConfig(store="s", out="o", precision="fp32", channels_last=False, num_workers=4)
    exact = for_device(paper, "cuda", cpus=16)
    assert (exact.num_workers, exact.precision, exact.channels_last) == (4, "fp32", False)
    assert for_device(gpu, "cuda", cpus=16) == gpu  # settled settings stay as they are


def test_bad_worker_and_precision_settings() -> None:
    with pytest.raises(ConfigError, match="--num-workers 17 is more than the 16 CPUs"):
        for_device(PretrainConfig(store="s", out="o", num_workers=17), "cuda", cpus=16)
    with pytest.raises(ConfigError, match="bf16 is not supported"):
        for_device(PretrainConfig(store="s", out="o", precision="bf16"), "cuda", cpus=4, bf16_ok=False)
    for bad in (-1, "many", 2.5):
        with pytest.raises(ConfigError, match="--num-workers"):
            PretrainConfig(store="s", out="o", num_workers=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--on-corrupt"):
        PretrainConfig(store="s", out="o", on_corrupt="ignore")
    assert cpus_per_process() >= 1
