"""The schema of ``results.json`` and a small validator (a JSON-Schema subset, no dependency).

Supported keywords: ``type`` (a name or a list of names), ``properties``, ``required``,
``additionalProperties`` (a schema for values of other keys), ``items``, ``enum``, ``minimum``,
``maximum``. All times are milliseconds, accuracy values fractions in [0, 1], deltas percentage points.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 2

_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}
_CI = {"type": ["array", "null"], "items": {"type": "number"}}
#: A bootstrap interval of top-1 over photo clusters (:func:`fishopt.training.metrics.bootstrap_ci`).
TOP1_CI = {
    "type": "object",
    "required": ["low", "high", "level", "by", "units"],
    "properties": {
        "low": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "high": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "level": {"type": "number", "minimum": 0, "maximum": 1},
        "by": {"type": "string"},
        "units": {"type": "integer", "minimum": 0},
    },
}

TIMING: dict[str, Any] = {
    "type": "object",
    "required": ["n", "p50_ms", "p90_ms", "p99_ms", "ci95_ms", "cv", "unstable"],
    "properties": {
        "n": {"type": "integer", "minimum": 1},
        "mean_ms": {"type": "number", "minimum": 0},
        "p50_ms": {"type": "number", "minimum": 0},
        "p90_ms": {"type": "number", "minimum": 0},
        "p99_ms": {"type": "number", "minimum": 0},
        "ci95_ms": {"type": "array", "items": {"type": "number"}},
        "cv": {"type": "number", "minimum": 0},
        "robust_cv": {"type": "number", "minimum": 0},
        "unstable": {"type": "boolean"},
    },
}

ACCURACY = {
    "type": ["object", "null"],
    "required": [
        "n",
        "top1",
        "macro_f1",
        "per_class",
        "agreement",
        "delta_top1",
        "delta_macro_f1",
        "delta_per_class",
        "collapse",
    ],
    "properties": {
        "n": {"type": "integer", "minimum": 0},
        "top1": {"type": "number", "minimum": 0, "maximum": 1},
        "macro_f1": {"type": "number", "minimum": 0, "maximum": 1},
        "per_class": {"type": "object", "additionalProperties": _NUM},
        "confusion": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "agreement": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "delta_top1": {"type": "number"},
        "delta_macro_f1": {"type": "number"},
        "delta_per_class": {"type": "object", "additionalProperties": _NUM},
        "worst_class": _STR,
        "collapse": {"type": "boolean"},
        "top1_ci95": TOP1_CI,
    },
}

THROUGHPUT = {
    "type": "object",
    "required": ["batch_size", "images_per_s", "p50_ms"],
    "properties": {
        "batch_size": {"type": "integer", "minimum": 1},
        "images_per_s": _NUM,
        "p50_ms": _NUM,
        "ci95_ms": _CI,
        "cv": _NUM,
        "unstable": {"type": "boolean"},
    },
}

#: One fast-path agreement check (:func:`fishopt.artifacts.pipeline_check.pipeline_agreement`).
AGREEMENT = {
    "type": "object",
    "required": ["n", "agreement", "delta_points", "taken"],
    "properties": {"agreement": {"type": "number", "minimum": 0, "maximum": 1}},
}
#: The camera-size inputs of one run: per size, the files and the gate that chose the decode pipeline.
CAMERA = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["n_files", "mean_kb", "agreement", "pipeline"],
        "properties": {
            "pipeline": {"type": "string", "enum": ["turbo", "fast", "full", "exact"]},
            "agreement": AGREEMENT,
            "checks": {"type": "array", "items": AGREEMENT},
        },
    },
}
E2E = {
    "type": "object",
    "required": ["pipeline", "total", "stages_p50_ms"],
    "properties": {
        "pipeline": {"type": "string", "enum": ["turbo", "fast", "full", "exact", "today"]},
        "total": TIMING,
        "stages_p50_ms": {
            "type": "object",
            "required": ["decode", "preprocess", "model"],
            "additionalProperties": {"type": "number", "minimum": 0},
        },
    },
}

ROW = {
    "type": "object",
    "required": [
        "variant",
        "runtime",
        "precision",
        "device",
        "status",
        "reason",
        "accuracy",
        "latency",
        "throughput",
        "size_bytes",
        "build_seconds",
        "peak_mem_mb",
        "gops",
        "peak_share",
    ],
    "properties": {
        "variant": {"type": "string"},
        "runtime": {"type": "string"},
        "precision": {"type": "string", "enum": ["fp32", "fp16", "bf16", "int8"]},
        "mode": _STR,
        "device": {"type": "string", "enum": ["cpu", "cuda"]},
        "status": {"type": "string", "enum": ["ok", "skipped", "failed"]},
        "reason": _STR,
        "stage": _STR,
        "accuracy": ACCURACY,
        "latency": {
            "type": ["object", "null"],
            "required": ["bs1"],
            "properties": {
                "bs1": {
                    **TIMING,
                    "properties": {**TIMING["properties"], "e2e": {**TIMING, "type": ["object", "null"]}},
                },
            },
        },
        "throughput": {"type": ["object", "null"], "additionalProperties": THROUGHPUT},
        "speedup_bs1": _NUM,
        "speedup_throughput": _NUM,
        "size_bytes": {"type": ["integer", "null"], "minimum": 0},
        "build_seconds": _NUM,
        "peak_mem_mb": _NUM,
        "gops": _NUM,
        "peak_gops": _NUM,
        "peak_share": {"type": ["number", "null"], "minimum": 0},
        "compute_precision": {"type": ["string", "null"], "enum": ["fp32", "fp16", "bf16", "int8", None]},
        "e2e": {"type": ["object", "null"], "additionalProperties": E2E},
        "throughput_best": {
            "type": ["object", "null"],
            "required": ["batch_size", "images_per_s", "images_per_s_per_core"],
        },
        "model": _STR,
    },
}

RECOMMENDATION = {
    "type": "object",
    "required": ["variant", "metric", "value", "reason"],
    "properties": {
        "variant": _STR,
        "metric": {"type": "string"},
        "value": _NUM,
        "speedup": _NUM,
        "delta_top1": _NUM,
        "reason": _STR,
    },
}

RESULTS = {
    "type": "object",
    "required": ["schema_version", "fingerprint", "settings", "reference", "rows", "recommendations", "warnings"],
    "properties": {
        "schema_version": {"type": "integer", "enum": [SCHEMA_VERSION]},
        "fingerprint": {
            "type": "object",
            "required": ["cpu", "versions", "git", "malloc", "threads", "background_load", "peak"],
        },
        "settings": {
            "type": "object",
            "required": ["checkpoint", "batch_sizes", "threads", "quick", "max_drop", "n_test"],
        },
        "reference": {
            "type": "object",
            "required": ["top1", "macro_f1", "per_class"],
            "properties": {"top1_ci95": TOP1_CI},
        },
        "across_models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["variant", "model", "top1", "value", "metric", "reason"],
                "properties": {
                    "variant": _STR,
                    "model": _STR,
                    "top1": _NUM,
                    "value": _NUM,
                    "reason": {"type": "string"},
                },
            },
        },
        "rows": {"type": "array", "items": ROW},
        "recommendations": {"type": "object", "additionalProperties": RECOMMENDATION},
        "targets": {
            "type": "object",
            "properties": {
                "cpu_latency_speedup": _NUM,
                "int8_over_fp32": _NUM,
                "meets_3x": {"type": ["boolean", "null"]},
                "int8_beats_fp32": {"type": ["boolean", "null"]},
                "int8_size": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["fp32", "ratio", "meets"],
                        "properties": {"fp32": {"type": "string"}, "ratio": _NUM, "meets": {"type": "boolean"}},
                    },
                },
            },
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "e2e_today": {"type": "object", "additionalProperties": E2E},
        "camera": CAMERA,
        "camera_by_model": {"type": "object", "additionalProperties": CAMERA},
        "e2e_today_by_model": {
            "type": "object",
            "additionalProperties": {"type": "object", "additionalProperties": E2E},
        },
        "camera_targets_by_model": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "profiles": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["profiler", "calls", "total_ms", "ops"],
                "properties": {
                    "ops": {"type": "array", "items": {"type": "object", "required": ["op", "ms", "share"]}}
                },
            },
        },
    },
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(value: Any, schema: dict, path: str = "$") -> list[str]:
    """Return the schema violations of ``value`` (empty when valid), each naming its JSON path."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[t](value) for t in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if value is None:
        return []
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing key {k!r}" for k in schema.get("required", ()) if k not in value]
        props = schema.get("properties", {})
        for key, sub in value.items():
            child = props.get(key, schema.get("additionalProperties"))
            if isinstance(child, dict):
                errors += validate(sub, child, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


def check_results(results: dict) -> None:
    """Raise ``ValueError`` listing every violation if ``results`` does not fit :data:`RESULTS`."""
    errors = validate(results, RESULTS)
    if errors:
        raise ValueError("results.json does not match its schema:\n  " + "\n  ".join(errors[:20]))
