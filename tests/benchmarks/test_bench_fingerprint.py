"""Fingerprint: CPU flags, peak estimate, versions without imports, malloc, background load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fishopt.benchmarks import fingerprint as fpm

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16

processor\t: 1
"""


def test_cpu_info_parses_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    cpu = fpm.cpu_info(str(path))
    assert cpu["model"].startswith("Intel(R) Xeon")
    assert cpu["flags"]["avx512f"] and cpu["flags"]["amx_int8"] and not cpu["flags"]["avx512_fp16"]
    assert cpu["usable_cpus"] >= 1


def test_peak_assumptions() -> None:
    amd = {
        "vendor": "AuthenticAMD",
        "model": "AMD EPYC",
        "mhz": 2500.0,
        "family": 25,
        "flags": {"avx2": True, "fma": True, "avx512f": True, "avx512_vnni": True, "avx512_bf16": True},
    }
    assert fpm.flops_per_cycle(amd, "fp32")[0] == 32
    assert fpm.flops_per_cycle(amd, "int8")[0] == 128
    assert fpm.flops_per_cycle(amd, "bf16")[0] == 64
    intel = {**amd, "vendor": "GenuineIntel", "model": "Xeon", "flags": {**amd["flags"], "amx_int8": True}}
    assert fpm.flops_per_cycle(intel, "fp32")[0] == 64 and fpm.flops_per_cycle(intel, "int8")[0] == 2048
    assert fpm.flops_per_cycle({**amd, "family": 26}, "fp32")[0] == 64  # Zen 5: full 512-bit datapaths
    peak = fpm.peak_gops(amd, 2)
    assert peak["gops"] == 2 * 2500 * 32 / 1000 and "2 threads" in peak["assumption"]
    assert fpm.flops_per_cycle({"flags": {}}, "fp32")[0] == 8


def test_versions_do_not_import_heavy_modules() -> None:
    code = (
        "import sys; from fishopt.benchmarks.fingerprint import versions; v = versions(); "
        "bad = [m for m in ('onnxruntime', 'openvino', 'neural_compressor', 'torchao', 'nncf', 'torch') if m in sys.modules]; "
        "print(bad, v['fishopt'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("[]")


def test_malloc_settings() -> None:
    assert fpm.malloc_settings({})["tuned"] is False
    assert fpm.malloc_settings(dict(fpm.MALLOC_ENV))["tuned"] is True


def test_fingerprint_and_load_sampler() -> None:
    fp = fpm.fingerprint(threads=1, split_hash="h")
    assert fp["threads"] == 1 and fp["split_hash"] == "h" and "torch" in fp["versions"]
    assert set(fp["peak"]) == {"fp32", "bf16", "fp16", "int8"}
    assert "commit" in fp["git"]
    with fpm.LoadSampler() as sampler:
        sum(i * i for i in range(200_000))
    res = sampler.result
    assert set(res) == {"background_cpus", "background_share", "own_cpus", "seconds"}
    if res["background_share"] is not None:
        assert 0.0 <= res["background_share"] <= 1.0
