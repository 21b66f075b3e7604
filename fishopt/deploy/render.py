"""Write the bundle's programs, scripts and docs from the templates in ``fishopt/deploy/templates``.

Templates use ``{{NAME}}`` placeholders (no clash with shell ``$`` or Python braces); :func:`render` fails on
any placeholder left unfilled. ``infer.py``, ``verify.py`` and ``benchmark.py`` are copied unchanged: they
read everything from ``bundle.json`` at run time. ``fishdecode.py`` is fishopt's own decode-and-fit module
(:mod:`fishopt.data.decode`), copied unchanged, so the bundle decodes images exactly as fishopt does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fishopt.data import decode as decode_module
from fishopt.deploy.targets import TRTEXEC_FLAGS, Target
from fishopt.io import file_mode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PROGRAMS = ("infer.py", "verify.py", "benchmark.py")
#: fishopt's decode-and-fit module, shipped in every bundle under this name.
DECODE_MODULE = "fishdecode.py"
#: Fast JPEG decoding on the device (infer.py falls back to Pillow without it).
SIMPLEJPEG = ">=1.7"
_PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")


def template(name: str) -> str:
    """The text of a template file."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def render(text: str, values: dict[str, Any]) -> str:
    """Fill ``{{NAME}}`` placeholders.

    Raises:
        KeyError: If a placeholder has no value (a bug in the caller, not user input).
    """
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"template placeholders without a value: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def _write(path: Path, text: str, executable: bool = False) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, file_mode(executable))


def write_programs(folder: Path) -> None:
    """Copy infer.py, verify.py, benchmark.py and fishopt's decode module (``fishdecode.py``)."""
    for name in PROGRAMS:
        _write(folder / name, template(name), executable=True)
    _write(folder / DECODE_MODULE, Path(decode_module.__file__).read_text(encoding="utf-8"))


def write_requirements(folder: Path, bundle: dict[str, Any]) -> None:
    """``requirements.txt``: what pip installs on the device."""
    req = bundle["requirements"]
    lines = [
        f"numpy{req['numpy']}",
        f"pillow{req['pillow']}",
        f"onnxruntime{req['onnxruntime']}",
        f"simplejpeg{req.get('simplejpeg', SIMPLEJPEG)}  # fast JPEG decoding; without it infer.py uses Pillow",
    ]
    _write(folder / "requirements.txt", "\n".join(lines) + "\n")


def engine_values(bundle: dict[str, Any], target: Target) -> dict[str, Any]:
    """Placeholder values of build_engine.sh."""
    model, req = bundle["model"], bundle["requirements"]
    shape = model["input"]["shape"]
    low, high = req["tensorrt"].split(",")
    return {
        "MODEL_FILE": model["file"],
        "MODEL_SHA256": model["sha256"],
        "ENGINE_FILE": bundle["engine"]["file"],
        "PRECISION": bundle["precision"],
        "TRTEXEC_FLAGS": " ".join(TRTEXEC_FLAGS[bundle["precision"]]),
        "INPUT_NAME": model["input"]["name"],
        "HEIGHT": shape[1],
        "WIDTH": shape[2],
        "DYNAMIC_BATCH": 1 if shape[0] == -1 else 0,
        "MAX_BATCH": bundle["engine"]["max_batch"],
        "TRT_MIN": low.removeprefix(">="),
        "TRT_BELOW": high.removeprefix("<"),
        "TRT_RANGE": req["tensorrt"],
        "JETPACK": req["jetpack"],
        "BASE_IMAGE": target.base_image,
    }


def write_build_engine(folder: Path, bundle: dict[str, Any], target: Target) -> None:
    """``build_engine.sh`` with this bundle's model, input shape, precision flags and TensorRT range."""
    _write(
        folder / "build_engine.sh", render(template("build_engine.sh"), engine_values(bundle, target)), executable=True
    )


def write_dockerfile(folder: Path, bundle: dict[str, Any], target: Target) -> None:
    """``Dockerfile`` for the target."""
    values = {"BASE_IMAGE": target.base_image, "IMAGE": _image_name(bundle)}
    _write(folder / "Dockerfile", render(template(target.dockerfile), values))


def _image_name(bundle: dict[str, Any]) -> str:
    return f"fishopt-{bundle['target']}-{bundle['precision']}"


def _device_steps(bundle: dict[str, Any], target: Target) -> str:
    req = bundle["requirements"]
    if not target.tensorrt:
        return (
            "```sh\npython3 -m venv .venv && . .venv/bin/activate\npip install -r requirements.txt\n"
            "python3 verify.py                                 # must print PASS\n```\n"
        )
    return (
        f"Needs JetPack {req['jetpack']} (TensorRT {req['tensorrt']}, L4T {req['l4t']}). Copy the folder (or "
        "the .tar.gz) to the Jetson, then:\n"
        "```sh\nsudo apt install python3-pip python3-libnvinfer   # TensorRT Python bindings (part of JetPack)\n"
        "python3 -m pip install -r requirements.txt\n"
        f"./build_engine.sh                                 # trtexec -> {bundle['engine']['file']} "
        f"({bundle['precision']}), engine.json\n"
        "python3 verify.py                                 # TensorRT vs golden.json: must print PASS\n"
        "python3 verify.py --runtime onnxruntime           # the CPU fallback\n```\n"
        "Engines are tied to the device and the TensorRT version: after a JetPack upgrade run ./build_engine.sh "
        "again (infer.py refuses a stale engine).\n"
    )


def _docker_steps(bundle: dict[str, Any], target: Target) -> str:
    image = _image_name(bundle)
    if not target.tensorrt:
        return (
            f"docker build -t {image} .\ndocker run --rm {image}                       # verify.py\n"
            f"docker run --rm -v /path/to/photos:/data:ro {image} python infer.py /data --json"
        )
    run = f'docker run --rm --runtime nvidia -v "$PWD":/bundle {image}'
    return (
        f"docker build -t {image} .\n{run} ./build_engine.sh\n{run} python3 verify.py\n"
        f'docker run --rm --runtime nvidia -v "$PWD":/bundle -v /path/to/photos:/data:ro {image} '
        "python3 infer.py /data --json"
    )


def pipeline_line(preprocess: dict[str, Any] | None) -> str:
    """One sentence on the decode pipeline ``infer.py`` takes and the check that chose it."""
    if not preprocess:
        return "`infer.py` decodes every image with the exact arithmetic of fishopt's evaluation."
    checks = "; ".join(
        f"`{c['pipeline']}` {c['agreement']:.2%} agreement, top-1 {c['delta_points']:+.1f} points"
        + ("" if c["taken"] else " (rejected)")
        for c in preprocess["checks"]
    )
    return (
        f"`infer.py` decodes images through the `{preprocess['pipeline']}` pipeline of `fishdecode.py`, the fastest "
        f"that kept the model's answers on {preprocess['checked_on']} ({checks}; rule: {preprocess['rule']}); "
        "`--pipeline exact` gives fishopt's evaluation pixels."
    )


def write_readme(folder: Path, bundle: dict[str, Any], target: Target) -> None:
    """``README.md`` with the exact commands on the device."""
    acc, model = bundle["accuracy"], bundle["model"]
    req = ", ".join(f"{k} {v}" for k, v in bundle["requirements"].items())
    engine_row = ""
    if target.tensorrt:
        engine_row = (
            "| `build_engine.sh` | builds the TensorRT engine on the device with trtexec "
            f"(`{bundle['engine']['file']}` + `engine.json`) |\n"
        )
    values = {
        "TARGET": bundle["target"],
        "PRECISION": bundle["precision"],
        "FISHOPT_VERSION": bundle["fishopt_version"],
        "CREATED": bundle["created"],
        "CHECKPOINT_NAME": bundle["checkpoint"]["file"],
        "CHECKPOINT_SHA256": bundle["checkpoint"]["sha256"],
        "NUM_CLASSES": len(bundle["class_names"]),
        "CLASSES": ", ".join(bundle["class_names"]),
        "ACCURACY_N": acc["n"],
        "ACCURACY_RUNTIME": acc["measured_with"],
        "ACCURACY_TOP1": f"{acc['top1']:.4f} (checkpoint {acc['checkpoint_top1']:.4f})",
        "PIPELINE": pipeline_line(bundle.get("preprocess")),
        "MODEL_FILE": model["file"],
        "HEIGHT": model["input"]["shape"][1],
        "WIDTH": model["input"]["shape"][2],
        "LOGITS": model["outputs"]["logits"],
        "PROBS": model["outputs"]["probs"],
        "ENGINE_ROW": engine_row,
        "REQUIREMENTS": req,
        "DEVICE_STEPS": _device_steps(bundle, target),
        "DOCKER_STEPS": _docker_steps(bundle, target),
    }
    _write(folder / "README.md", render(template("README.md"), values))
