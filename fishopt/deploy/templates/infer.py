#!/usr/bin/env python3
"""Classify fish images with this bundle's model.

Standalone: needs numpy, Pillow and onnxruntime (or, on a Jetson with ``model.engine`` built by
``./build_engine.sh``, the TensorRT Python bindings and the CUDA runtime of JetPack), and ``simplejpeg`` for fast
JPEG decoding when installed. No fishopt, no torch.

Usage:
    python3 infer.py IMAGE_OR_FOLDER... [--json] [--runtime auto|onnxruntime|tensorrt] [--batch N]
                     [--pipeline auto|turbo|fast|full|exact]

Each image goes through ``fishdecode.decode_and_fit`` (beside this file: fishopt's own ``fishopt/data/decode.py``,
the one decode-and-fit function of fishopt's benchmark) in the pipeline ``bundle.json`` names under
``preprocess`` (``--pipeline`` overrides it): the fastest of ``turbo`` (as ``fast``, with Pillow's uint8 resize),
``fast`` (a JPEG at least twice the model's input size, a camera frame, is decoded at a reduced libjpeg DCT scale:
1920x1080 at 1/8 is ~8x less work than a full decode), ``full`` (full decode, Pillow's float resize) and ``exact`` (the arithmetic of fishopt's training and
evaluation) that kept the model's top-1 answers on the test split when the bundle was built. Grayscale, palette,
CMYK and RGBA images become RGB (alpha is dropped); each is resized to cover the model's input size with
antialiased bilinear filtering, center cropped and fed to the model as uint8 RGB (N, H, W, 3). The model does the
normalization itself and returns logits and probabilities.

Exit status: 0 when every image was classified, 1 when an image could not be read (named on stderr),
2 when the bundle itself is unusable (damaged or replaced model file, missing engine, ...).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import sys
from pathlib import Path

import numpy as np


def _decoder():
    """fishopt's decode module: ``fishdecode.py`` beside this file in a bundle (fishopt/data/decode.py in the source)."""
    import importlib.util

    here = Path(__file__).resolve().parent
    candidates = [here / "fishdecode.py"] + ([here.parents[1] / "data" / "decode.py"] if len(here.parents) > 1 else [])
    for candidate in candidates:
        if not candidate.is_file():
            continue
        if "fishdecode" in sys.modules and getattr(sys.modules["fishdecode"], "__file__", None) == str(candidate):
            return sys.modules["fishdecode"]
        spec = importlib.util.spec_from_file_location("fishdecode", candidate)
        module = importlib.util.module_from_spec(spec)
        sys.modules["fishdecode"] = module  # dataclasses look their module up while it executes
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["fishdecode"]
            raise
        return module
    raise ImportError(f"fishdecode.py is missing beside {__file__}: restore the bundle from its archive")


fishdecode = _decoder()
HERE = Path(__file__).resolve().parent
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class BundleError(Exception):
    """The bundle cannot run as it is; the message says why and what to do."""


class ImageError(Exception):
    """One input file is not a readable image."""


# ---------------------------------------------------------------------------------------------- bundle
def load_bundle(root: Path = HERE) -> dict:
    """Read ``bundle.json``."""
    path = root / "bundle.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{path} not found: run this program from an unpacked fishopt bundle") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); restore the bundle from its archive") from exc


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_model_path(bundle: dict, root: Path = HERE) -> Path:
    """Path of the model file after checking its SHA-256 against ``bundle.json``."""
    path = root / bundle["model"]["file"]
    if not path.is_file():
        raise BundleError(f"model file {path} is missing; restore the bundle from its archive")
    actual = sha256_of(path)
    if actual != bundle["model"]["sha256"]:
        raise BundleError(
            f"model file {path} does not match bundle.json (sha256 {actual[:16]}..., expected "
            f"{bundle['model']['sha256'][:16]}...): the file is damaged or was replaced; restore the bundle from its "
            "archive or rebuild it with 'fishopt deploy'"
        )
    return path


# ---------------------------------------------------------------------------------------------- images
def list_images(paths: list[str]) -> list[Path]:
    """Expand folders (recursively, image suffixes only, sorted); files are taken as given."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            out.append(path)
        else:
            raise ImageError(f"{name}: no such file or folder")
    return out


def decode(path: Path) -> np.ndarray:
    """Decode an image file in full to uint8 RGB (H, W, 3); grayscale, palette, CMYK and RGBA become RGB."""
    try:
        return fishdecode.decode_rgb(path).rgb
    except fishdecode.ImageDecodeError as exc:
        raise ImageError(f"{path}: not a readable image ({exc}); pass JPEG, PNG, BMP, TIFF or WebP files") from exc


def fit_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, 3) to cover ``size`` keeping the aspect ratio, then center crop to it."""
    return fishdecode.fit_array(image, size)


def bundle_pipeline(bundle: dict, requested: str = "auto") -> str:
    """The decode pipeline to use: ``requested``, or for ``auto`` the one the bundle was checked with."""
    if requested != "auto":
        return requested
    return bundle.get("preprocess", {}).get("pipeline", "exact")


def load_image(source, size: tuple[int, int], pipeline: str = "exact") -> np.ndarray:
    """Decode and fit one image (a file path or encoded bytes) to the model's (H, W): uint8 (H, W, 3)."""
    try:
        return fishdecode.decode_and_fit(source, size, pipeline=pipeline, layout="hwc")
    except fishdecode.ImageDecodeError as exc:
        name = source if not isinstance(source, (bytes, bytearray, memoryview)) else "image bytes"
        raise ImageError(f"{name}: not a readable image ({exc}); pass JPEG, PNG, BMP, TIFF or WebP files") from exc


# ---------------------------------------------------------------------------------------------- runtimes
class OnnxRuntimeModel:
    """The ONNX model on onnxruntime (CPU)."""

    name = "onnxruntime"

    def __init__(self, bundle: dict, root: Path = HERE, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BundleError("onnxruntime is not installed: pip install -r requirements.txt") from exc
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        path = checked_model_path(bundle, root)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = bundle["model"]["input"]["name"]
        self.outputs = [bundle["model"]["outputs"]["logits"], bundle["model"]["outputs"]["probs"]]
        self.version = ort.__version__
        self.precision = bundle["model"]["precision"]

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) -> (logits, probs), float32 (N, classes) each."""
        logits, probs = self.session.run(self.outputs, {self.input: batch})
        return np.asarray(logits, np.float32), np.asarray(probs, np.float32)


class _Cuda:
    """The few CUDA runtime calls the TensorRT branch needs, through ctypes (no pycuda needed)."""

    NAMES = ("libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "/usr/local/cuda/lib64/libcudart.so")

    def __init__(self) -> None:
        self.lib = None
        for name in self.NAMES:
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if self.lib is None:
            raise BundleError("the CUDA runtime (libcudart.so) was not found; it is part of JetPack. "
                              "Run with --runtime onnxruntime to use the CPU instead")
        self.stream = ctypes.c_void_p()
        self._check(self.lib.cudaStreamCreate(ctypes.byref(self.stream)), "cudaStreamCreate")

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise BundleError(f"CUDA call {what} failed with error {status}; check the GPU with tegrastats/nvidia-smi")

    def malloc(self, nbytes: int) -> ctypes.c_void_p:
        ptr = ctypes.c_void_p()
        self._check(self.lib.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(max(nbytes, 1))), "cudaMalloc")
        return ptr

    def to_device(self, dst: ctypes.c_void_p, src: np.ndarray) -> None:
        self._check(self.lib.cudaMemcpy(dst, src.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(src.nbytes), 1),
                    "cudaMemcpy")

    def to_host(self, dst: np.ndarray, src: ctypes.c_void_p) -> None:
        self._check(self.lib.cudaMemcpy(dst.ctypes.data_as(ctypes.c_void_p), src, ctypes.c_size_t(dst.nbytes), 2),
                    "cudaMemcpy")

    def sync(self) -> None:
        self._check(self.lib.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def free(self, ptr: ctypes.c_void_p) -> None:
        self.lib.cudaFree(ptr)


class TensorRTModel:
    """The engine built on this device by ./build_engine.sh, run with the TensorRT Python API (8.5 - 10.x)."""

    name = "tensorrt"

    def __init__(self, bundle: dict, root: Path = HERE, threads: int | None = None) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BundleError("the TensorRT Python bindings are not installed (JetPack: sudo apt install "
                              "python3-libnvinfer); or run with --runtime onnxruntime") from exc
        self.trt = trt
        engine_path, info = check_engine(bundle, root, trt.__version__)
        self.precision = info.get("precision", bundle["precision"])
        self.max_batch = int(info.get("max_batch") or 1)
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise BundleError(f"TensorRT could not load {engine_path}; rebuild it on this device: ./build_engine.sh")
        self.context = self.engine.create_execution_context()
        self.cuda = _Cuda()
        self.input = bundle["model"]["input"]["name"]
        self.outputs = [bundle["model"]["outputs"]["logits"], bundle["model"]["outputs"]["probs"]]
        self.version = trt.__version__
        self._cache: dict = {}

    def _buffers(self, shape: tuple) -> tuple[dict, dict]:
        """Device buffers and host outputs for an input shape, allocated once per shape."""
        if shape not in self._cache:
            ctx = self.context
            ctx.set_input_shape(self.input, shape)
            buffers = {self.input: self.cuda.malloc(int(np.prod(shape)))}  # uint8: one byte per element
            hosts = {}
            for name in self.outputs:
                dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
                hosts[name] = np.empty(tuple(ctx.get_tensor_shape(name)), dtype=dtype)
                buffers[name] = self.cuda.malloc(hosts[name].nbytes)
            self._cache[shape] = (buffers, hosts)
        return self._cache[shape]

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) -> (logits, probs), float32 (N, classes) each."""
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        buffers, hosts = self._buffers(tuple(batch.shape))
        ctx = self.context
        ctx.set_input_shape(self.input, tuple(batch.shape))
        self.cuda.to_device(buffers[self.input], batch)
        for name, ptr in buffers.items():
            ctx.set_tensor_address(name, ptr.value)
        if not ctx.execute_async_v3(self.cuda.stream.value):
            raise BundleError("TensorRT inference failed; rebuild the engine: ./build_engine.sh")
        self.cuda.sync()
        for name in self.outputs:
            self.cuda.to_host(hosts[name], buffers[name])
        return tuple(np.array(hosts[n], np.float32) for n in self.outputs)

    def close(self) -> None:
        """Free the device buffers."""
        for buffers, _ in self._cache.values():
            for ptr in buffers.values():
                self.cuda.free(ptr)
        self._cache.clear()


def _short_version(version: str) -> str:
    return ".".join(str(version).split(".")[:3])


def check_engine(bundle: dict, root: Path, trt_version: str) -> tuple:
    """Path and engine.json of the engine after checking it was built from this model with this TensorRT."""
    info_path = root / "engine.json"
    engine = root / bundle.get("engine", {}).get("file", "model.engine")
    if not engine.is_file() or not info_path.is_file():
        raise BundleError(f"no TensorRT engine ({engine.name}); build it on this device: ./build_engine.sh")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("model_sha256") != bundle["model"]["sha256"]:
        raise BundleError(f"{engine.name} was built from another model; rebuild it: ./build_engine.sh")
    if info.get("tensorrt") and _short_version(info["tensorrt"]) != _short_version(trt_version):
        raise BundleError(f"{engine.name} was built with TensorRT {info['tensorrt']} but this is {trt_version}; "
                          "engines are not portable: rebuild it: ./build_engine.sh")
    return engine, info


def open_model(bundle: dict, runtime: str = "auto", root: Path = HERE, threads: int | None = None):
    """Open the model: ``tensorrt`` (engine), ``onnxruntime``, or ``auto`` (the engine when it exists)."""
    checked_model_path(bundle, root)
    if runtime == "auto":
        has_engine = (root / bundle.get("engine", {}).get("file", "model.engine")).is_file()
        runtime = "tensorrt" if has_engine else "onnxruntime"
    if runtime == "tensorrt":
        return TensorRTModel(bundle, root, threads)
    if runtime == "onnxruntime":
        return OnnxRuntimeModel(bundle, root, threads)
    raise BundleError(f"unknown runtime {runtime!r}; valid: auto, onnxruntime, tensorrt")


def input_hw(bundle: dict) -> tuple[int, int]:
    """The model input's (H, W)."""
    shape = bundle["model"]["input"]["shape"]
    return int(shape[1]), int(shape[2])


def run_batches(model, images: list[np.ndarray], batch: int, fixed_batch: int | None = None):
    """Run images through the model in chunks; yield (logits, probs) per image."""
    for i in range(0, len(images), batch):
        chunk = np.stack(images[i : i + batch])
        n = len(chunk)
        if fixed_batch and n < fixed_batch:  # a static batch dimension: pad the last chunk
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed_batch - n, axis=0)])
        logits, probs = model(chunk)
        yield from zip(logits[:n], probs[:n])


def batch_size(bundle: dict, requested: int | None) -> tuple[int, int | None]:
    """Chunk size and, for a static batch dimension, that size."""
    first = bundle["model"]["input"]["shape"][0]
    if isinstance(first, int) and first > 0:
        return first, first
    return requested or 8, None


# ---------------------------------------------------------------------------------------------- main
def classify(paths: list[Path], model, bundle: dict, batch: int | None = None, pipeline: str = "auto"):
    """Yield ``(path, (label, prob, logits))`` per readable image and ``(path, ImageError)`` per unreadable one."""
    size = input_hw(bundle)
    pipeline = bundle_pipeline(bundle, pipeline)
    names = bundle["class_names"]
    chunk, fixed = batch_size(bundle, batch)
    if getattr(model, "max_batch", None) and not fixed:
        chunk = min(chunk, model.max_batch)
    for i in range(0, len(paths), chunk):
        good, images = [], []
        for path in paths[i : i + chunk]:
            try:
                images.append(load_image(path, size, pipeline))
                good.append(path)
            except ImageError as exc:
                yield path, exc
        for path, (logits, probs) in zip(good, run_batches(model, images, chunk, fixed)):
            top = int(np.argmax(probs))
            yield path, (names[top], float(probs[top]), logits)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Classify fish images with this bundle's model.")
    parser.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image: file, label, prob")
    parser.add_argument("--runtime", choices=("auto", "onnxruntime", "tensorrt"), default="auto",
                        help="auto: the TensorRT engine when ./build_engine.sh has built it, else onnxruntime")
    parser.add_argument("--batch", type=int, default=None, help="images per model call (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime")
    parser.add_argument("--pipeline", choices=("auto",) + tuple(fishdecode.PIPELINES), default="auto",
                        help="decode pipeline; auto: the one bundle.json's preprocess names (checked at build time)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.batch is not None and args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        bundle = load_bundle()
        paths = list_images(args.paths)
        model = open_model(bundle, args.runtime, threads=args.threads)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for path, result in classify(paths, model, bundle, args.batch, args.pipeline):
        if isinstance(result, Exception):
            failed += 1
            print(f"error: {result}", file=sys.stderr)
            continue
        label, prob, _ = result
        if args.json:
            print(json.dumps({"file": str(path), "label": label, "prob": round(prob, 6)}))
        else:
            print(f"{path}\t{label}\t{prob:.4f}")
    if not paths:
        print("error: no image files found in the given paths", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        sys.stderr.close()
        sys.exit(0)
