"""Accelerator table for the roofline: dense peak FLOP/s per dtype, HBM bandwidth, memory.

All peaks are **dense** tensor-core figures (NVIDIA datasheets quote 2:4-sparse figures
first, twice these), except ``fp32``, which is the non-tensor FP32 rate (PyTorch does not use
TF32 for matmuls by default). Memory is the datasheet's capacity in decimal GB (1e9 bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from scaling.errors import ScalingError, unknown_name

#: Bytes per element of each supported dtype (weights, activations and KV cache).
DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
)

_DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16",
                  "half": "fp16", "float8": "fp8", "fp8_e4m3": "fp8", "e4m3": "fp8"}


def normalise_dtype(dtype: str) -> str:
    """``"bfloat16"`` -> ``"bf16"``; raises :class:`ScalingError` for unknown dtypes."""
    key = str(dtype).strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise ScalingError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}")
    return key


@dataclass(frozen=True)
class GPUSpec:
    """One accelerator: memory, HBM bandwidth and dense peak FLOP/s per dtype."""

    name: str
    label: str
    memory_bytes: float
    hbm_bytes_per_s: float
    peaks: Mapping[str, float]  # dtype -> dense peak FLOP/s
    source: str = ""

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype``; raises if the GPU has no such tensor cores."""
        key = normalise_dtype(dtype)
        if key not in self.peaks:
            raise ScalingError(f"{self.name} has no {key} peak in the table (it supports "
                               f"{', '.join(self.peaks)}); pick another --dtype or GPU")
        return self.peaks[key]

    @property
    def memory_gb(self) -> float:
        return self.memory_bytes / 1e9


def _gpu(name: str, label: str, memory_gb: float, tb_per_s: float, source: str,
         **tflops: float) -> GPUSpec:
    peaks = MappingProxyType({k: v * 1e12 for k, v in tflops.items()})
    return GPUSpec(name, label, memory_gb * 1e9, tb_per_s * 1e12, peaks, source)


GPUS: dict[str, GPUSpec] = {
    g.name: g
    for g in (
        # NVIDIA H100 Tensor Core GPU datasheet, SXM5 column: BF16/FP16 1,979 TFLOPS and
        # FP8 3,958 TFLOPS "with sparsity" -> 989.4 / 1,978.9 dense; TF32 989 sparse -> 494.7;
        # FP32 67 TFLOPS; 80 GB HBM3 at 3.35 TB/s.
        _gpu("h100", "NVIDIA H100 SXM5 80GB", 80, 3.35, "NVIDIA H100 datasheet (SXM)",
             bf16=989.4, fp16=989.4, fp8=1978.9, int8=1978.9, tf32=494.7, fp32=66.9),
        # NVIDIA H200 datasheet (SXM): same GH100 compute as H100 SXM; 141 GB HBM3e, 4.8 TB/s.
        _gpu("h200", "NVIDIA H200 SXM 141GB", 141, 4.8, "NVIDIA H200 datasheet (SXM)",
             bf16=989.4, fp16=989.4, fp8=1978.9, int8=1978.9, tf32=494.7, fp32=66.9),
        # NVIDIA A100 datasheet, 80GB SXM: BF16/FP16 312 TFLOPS dense (624 sparse), TF32 156,
        # FP32 19.5, INT8 624 TOPS; no FP8; 80 GB HBM2e at 2,039 GB/s.
        _gpu("a100-80gb", "NVIDIA A100 SXM4 80GB", 80, 2.039, "NVIDIA A100 datasheet (80GB SXM)",
             bf16=312.0, fp16=312.0, int8=624.0, tf32=156.0, fp32=19.5),
        # NVIDIA L40S datasheet: BF16/FP16 362.05 TFLOPS dense (733 sparse), FP8 733 dense,
        # INT8 733 TOPS dense, TF32 183, FP32 91.6; 48 GB GDDR6 at 864 GB/s.
        _gpu("l40s", "NVIDIA L40S 48GB", 48, 0.864, "NVIDIA L40S datasheet",
             bf16=362.05, fp16=362.05, fp8=733.0, int8=733.0, tf32=183.0, fp32=91.6),
        # NVIDIA Ada GPU architecture whitepaper, GeForce RTX 4090: FP16/BF16 tensor with FP32
        # accumulate 165.2 TFLOPS dense, FP8 (FP32 accumulate) 330.3, INT8 660.6 TOPS,
        # TF32 82.6, FP32 82.6; 24 GB GDDR6X at 1,008 GB/s.
        _gpu("rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24, 1.008,
             "NVIDIA Ada Lovelace architecture whitepaper (RTX 4090)",
             bf16=165.2, fp16=165.2, fp8=330.3, int8=660.6, tf32=82.6, fp32=82.6),
        # NVIDIA Blackwell datasheet, HGX B200 per GPU: FP8 9 PFLOPS and FP16/BF16 4.5 PFLOPS
        # with sparsity -> 4.5 / 2.25 dense; INT8 9 POPS sparse -> 4.5; TF32 2.2 sparse ->
        # 1.1; FP32 75 TFLOPS; 180 GB HBM3e at 7.7 TB/s.
        _gpu("b200", "NVIDIA B200 (HGX) 180GB", 180, 7.7, "NVIDIA HGX B200 datasheet",
             bf16=2250.0, fp16=2250.0, fp8=4500.0, int8=4500.0, tf32=1100.0, fp32=75.0),
    )
}

_GPU_ALIASES = {"h100-sxm": "h100", "h100-80gb": "h100", "h100-sxm5": "h100", "h200-sxm": "h200",
                "a100": "a100-80gb", "a100-sxm": "a100-80gb", "a100-80g": "a100-80gb",
                "4090": "rtx4090", "rtx-4090": "rtx4090", "geforce-rtx-4090": "rtx4090",
                "b200-hgx": "b200"}


def get_gpu(name: str | GPUSpec) -> GPUSpec:
    """Accelerator by name: ``h100``, ``h200``, ``a100-80gb``, ``l40s``, ``rtx4090``, ``b200``."""
    if isinstance(name, GPUSpec):
        return name
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    key = _GPU_ALIASES.get(key, key)
    if key in GPUS:
        return GPUS[key]
    raise unknown_name("GPU", name, GPUS, key=key)
