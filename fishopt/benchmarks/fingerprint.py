"""Where a benchmark ran: CPU, ISA flags, memory, GPU, package versions, git commit, malloc, load.

Versions come from :mod:`importlib.metadata`, so onnxruntime, openvino and friends are never
imported here. :class:`LoadSampler` measures the CPU time other processes used during a run from
``/proc/stat`` (all CPUs) minus this process's own CPU time.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from fishopt.artifacts.manifest import dist_versions
from fishopt.benchmarks.roofline import measure_peaks

PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "openvino",
    "nncf",
    "neural-compressor-pt",
    "torchao",
    "kornia",
    "numpy",
    "torch-tensorrt",
    "tensorrt",
    "fishopt",
)
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "2147483647", "MALLOC_TRIM_THRESHOLD_": "2147483647"}


def _cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """First processor block of /proc/cpuinfo as a dict (empty where unreadable)."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _max_mhz(info: dict[str, str]) -> tuple[float | None, str]:
    """The CPU clock in MHz and where it came from (cpufreq's maximum, else /proc/cpuinfo's current)."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000.0, "cpufreq max"
    except (OSError, ValueError):
        pass
    try:
        return float(info.get("cpu MHz", "")), "reported clock, boost unknown"
    except ValueError:
        return None, "unknown"


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except (OSError, ValueError):
        pass
    return None


def cpu_info(cpuinfo_path: str = "/proc/cpuinfo") -> dict:
    """CPU model, vendor, ISA flags, logical CPUs usable by this process, frequency, memory."""
    info = _cpuinfo(cpuinfo_path)
    flags = set(info.get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    mhz, mhz_source = _max_mhz(info)
    return {
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "vendor": info.get("vendor_id", ""),
        "family": int(info["cpu family"]) if info.get("cpu family", "").isdigit() else None,
        "flags": {f: f in flags for f in ISA_FLAGS},
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "mhz": mhz,
        "mhz_source": mhz_source,
        "mem_total_gb": _mem_total_gb(),
        "machine": platform.machine(),
        "kernel": platform.release(),
    }


def flops_per_cycle(cpu: dict, precision: str = "fp32") -> tuple[int, str]:
    """Peak operations per cycle per core for a precision, and the assumption behind it.

    An FMA counts as two operations. Assumptions: Intel AVX-512 = two 512-bit FMA units (64 FP32
    ops/cycle); AMD AVX-512 = 256-bit datapaths on Zen 4 (family 25: 32), full 512-bit on Zen 5
    (family 26+: 64); AVX2+FMA = two 256-bit units (32);
    otherwise SSE (8). INT8 with VNNI = 4x the FP32 rate, without = 2x; BF16/FP16 with AVX512_BF16 /
    AVX512_FP16 = 2x; AMX = 1024 INT8 or 512 BF16 MACs per cycle.
    """
    flags = cpu.get("flags", {})
    amd = "AMD" in cpu.get("vendor", "") or "AMD" in cpu.get("model", "")
    if flags.get("avx512f") and amd and (cpu.get("family") or 25) < 26:
        fp32, isa = 32, "AVX-512 on 256-bit datapaths (AMD Zen 4)"
    elif flags.get("avx512f"):
        fp32, isa = 64, "AVX-512, two 512-bit FMA units"
    elif flags.get("avx2") and flags.get("fma"):
        fp32, isa = 32, "AVX2, two 256-bit FMA units"
    else:
        fp32, isa = 8, "SSE"
    if precision == "int8":
        if flags.get("amx_int8"):
            return 2048, "AMX INT8 (1024 MACs/cycle)"
        vnni = flags.get("avx512_vnni") or flags.get("avx_vnni")
        return fp32 * (4 if vnni else 2), f"{isa}, INT8 {'VNNI 4x' if vnni else '2x'} FP32 rate"
    if precision in ("bf16", "fp16"):
        if flags.get("amx_bf16"):
            return 1024, "AMX BF16 (512 MACs/cycle)"
        native = flags.get("avx512_bf16") if precision == "bf16" else flags.get("avx512_fp16")
        return fp32 * (2 if native else 1), f"{isa}, {precision} {'2x' if native else '1x'} FP32 rate"
    return fp32, f"{isa}, FP32"


def peak_gops(cpu: dict, threads: int, precision: str = "fp32") -> dict:
    """Estimated peak GOPS of ``threads`` cores: threads x MHz x ops/cycle.

    Logical CPUs are counted as cores (on SMT machines this overstates the peak), and the clock
    is the maximum frequency from cpufreq, else the kernel's current (often base) clock: under a
    VM without cpufreq the boost clock is unknown and the share of peak can read high.
    """
    per_cycle, note = flops_per_cycle(cpu, precision)
    mhz = cpu.get("mhz") or 0.0
    gops = threads * mhz * per_cycle / 1000.0
    return {
        "gops": round(gops, 1),
        "ops_per_cycle": per_cycle,
        "mhz": mhz,
        "threads": threads,
        "assumption": f"{threads} threads x {mhz:.0f} MHz ({cpu.get('mhz_source', 'clock')}) x {per_cycle} ops/cycle ({note})",
    }


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (``None`` when not installed); imports nothing."""

    return dist_versions(packages)


def git_commit(repo: Path | None = None) -> dict:
    """Commit and dirty flag of the checkout fishopt is imported from (``None`` outside git)."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def gpu_info() -> dict | None:
    """Name, capability, CUDA and driver version of GPU 0, or ``None`` without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    driver = None
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        driver = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        pass
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gb": round(props.total_memory / 1024**3, 1),
        "count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
        "driver": driver,
    }


def malloc_settings(env: Mapping[str, str] | None = None) -> dict:
    """The glibc malloc variables and whether both are at fishopt's recommended value."""
    source: Mapping[str, str] = os.environ if env is None else env
    values = {k: source.get(k) for k in MALLOC_ENV}
    return {**values, "tuned": all(source.get(k) == v for k, v in MALLOC_ENV.items())}


def fingerprint(threads: int, split_hash: str | None = None, peaks: dict | None = None) -> dict:
    """Everything needed to compare two benchmark runs.

    Args:
        threads: Threads every runtime was given.
        split_hash: Hash of the test split the accuracy was measured on.
        peaks: Measured GEMM peaks per precision (:func:`fishopt.benchmarks.roofline.measure_peaks`); measured
            here when not given. ``peak`` holds them; ``peak_nominal`` the clock x ops/cycle estimate for reference.
    """
    import torch

    cpu = cpu_info()
    if peaks is None:
        peaks = measure_peaks(threads)
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu": cpu,
        "gpu": gpu_info(),
        "versions": versions(),
        "git": git_commit(),
        "split_hash": split_hash,
        "malloc": malloc_settings(),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "peak": peaks,
        "peak_nominal": {p: peak_gops(cpu, threads, p) for p in ("fp32", "bf16", "fp16", "int8")},
    }


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _own_jiffies() -> int:
    """CPU time of this process and its finished children (compilers run by the builders), in ticks."""
    seconds = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        seconds += usage.ru_utime + usage.ru_stime
    return round(seconds * os.sysconf("SC_CLK_TCK"))


class LoadSampler:
    """Background CPU load during a run: busy CPU time of all processes minus this one.

    Use ``start()`` / ``stop()`` (or as a context manager); ``result`` is then
    ``{"background_cpus", "background_share", "own_cpus", "seconds"}``: the average number of CPUs
    other processes kept busy, that as a share of all CPUs, and this process's average CPUs.
    ``None`` values mean /proc/stat could not be read.
    """

    def __init__(self) -> None:
        self.result: dict = {}
        self._start: tuple[int, int, int, float] | None = None

    def start(self) -> LoadSampler:
        """Take the first sample."""
        try:
            busy, total = _cpu_jiffies()
        except (OSError, ValueError, IndexError):
            self._start = None
            return self
        self._start = (busy, total, _own_jiffies(), time.perf_counter())
        return self

    def stop(self) -> dict:
        """Take the second sample and compute ``result``."""
        empty = {"background_cpus": None, "background_share": None, "own_cpus": None, "seconds": None}
        if self._start is None:
            self.result = empty
            return self.result
        try:
            busy, total = _cpu_jiffies()
        except (OSError, ValueError, IndexError):
            self.result = empty
            return self.result
        b0, t0, o0, s0 = self._start
        ncpu = os.cpu_count() or 1
        dt = max(total - t0, 1)
        own = max(_own_jiffies() - o0, 0)
        other = max(busy - b0 - own, 0)
        self.result = {
            "background_cpus": round(other / dt * ncpu, 3),
            "background_share": round(other / dt, 4),
            "own_cpus": round(own / dt * ncpu, 3),
            "seconds": round(time.perf_counter() - s0, 2),
        }
        return self.result

    def __enter__(self) -> LoadSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
