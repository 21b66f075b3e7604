"""Two source trees of fishopt serving one artifact, loaded in turn: their latencies as ratios from one run.

The machine is shared and noisy, so a serving change is judged against the code before it side by side: each
tree's ``fishopt serve`` runs as its own process (batching on and off), and the same bounded loads
(:func:`fishopt.serve.load.run_load`) hit them alternately for ``--rounds`` rounds, so a change in the background
load hits both. Reported per tree and load: client p50/p99 latency, throughput, the server's preprocess time and
the overhead (end-to-end minus model compute) at concurrency 1, and the batching speedup at concurrency 8.

Usage (compare the working tree with the last commit)::

    git worktree add /tmp/fishopt-head HEAD
    python benchmarks/serve_compare.py runs/artifacts/onnxruntime-int8 --tree head=/tmp/fishopt-head \\
        --tree new=. --image ../shared/data/fish/Fish_Dataset/Shrimp/Shrimp/00001.png --out serve_compare.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LOADS = {"c1": {"concurrency": 1}, "c8": {"concurrency": 8}}


@contextlib.contextmanager
def server(tree: Path, artifact: Path, *args: str) -> Iterator[str]:
    """``fishopt serve ARTIFACT --port 0 ARGS`` from the source ``tree``; yields its URL once ready."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    code = "import sys; from fishopt.cli import main; sys.argv[0] = 'fishopt'; main()"
    with tempfile.TemporaryDirectory(prefix="fishopt-serve-compare-") as tmp:
        log = Path(tmp) / "stderr.log"
        with open(log, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", str(artifact.resolve()), "--port", "0", *args],
                stderr=err,
                stdout=subprocess.DEVNULL,
                env=env,
                cwd=tmp,
            )
        try:
            deadline, url = time.monotonic() + 180, None
            while True:
                found = re.search(r" at (http://127\.0\.0\.1:\d+)\n", log.read_text(errors="replace"))
                url = found.group(1) if found else None
                if url is not None:
                    with contextlib.suppress(OSError):
                        if urllib.request.urlopen(url + "/v2/health/ready", timeout=2).status == 200:
                            break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fishopt serve from {tree} did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def jpeg_224x168(path: Path) -> bytes:
    """The image re-encoded as a 224x168 JPEG (quality 90): the size the serving targets are stated for."""
    from PIL import Image

    buf = io.BytesIO()
    with Image.open(path) as img:
        img.convert("RGB").resize((224, 168), Image.Resampling.BILINEAR).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    from fishopt.serve.load import run_load

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="artifact folder both trees serve")
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a fishopt source tree (2+)")
    parser.add_argument("--image", type=Path, required=True, help="image sent (re-encoded as a 224x168 JPEG)")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per load and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    trees = dict(item.split("=", 1) for item in args.tree)
    if len(trees) < 2:
        parser.error("give at least two --tree NAME=PATH")
    image = jpeg_224x168(args.image)
    results: dict[str, dict[str, list[dict]]] = {}
    with contextlib.ExitStack() as stack:
        urls = {
            (name, batching): stack.enter_context(
                server(Path(path), args.artifact, "--threads", args.threads, "--max-batch", "16" if batching else "1")
            )
            for name, path in trees.items()
            for batching in (False, True)
        }
        for r in range(args.rounds):
            for (name, batching), url in urls.items():
                for load, kwargs in LOADS.items():
                    key = f"{load}_{'batched' if batching else 'unbatched'}"
                    run = asyncio.run(
                        run_load(url, [image], mode="infer", duration_s=args.seconds, warmup_s=1.0, **kwargs)
                    )
                    if run.errors:
                        raise SystemExit(f"{name} {key} round {r}: errors {run.errors}")
                    results.setdefault(name, {}).setdefault(key, []).append(run.to_dict())
    summary = {}
    for name, runs in results.items():

        def median(key: str, pick, runs: dict[str, list[dict]] = runs) -> float:
            values = sorted(pick(run) for run in runs[key])
            return values[len(values) // 2]

        rps = {k: sum(r["ok"] for r in v) / sum(r["duration_s"] for r in v) for k, v in runs.items()}
        summary[name] = {
            "c1_latency_p50_ms": 1e3 * median("c1_unbatched", lambda r: r["latency_s"]["p50"]),
            "c1_overhead_p50_ms": 1e3 * median("c1_unbatched", lambda r: r["overhead_s"]["p50"]),
            "c1_preprocess_mean_ms": 1e3
            * median("c1_unbatched", lambda r: r["server"]["preprocess_duration_seconds"]["mean"]),
            "c8_unbatched_rps": rps["c8_unbatched"],
            "c8_batched_rps": rps["c8_batched"],
            "c8_batching_speedup": rps["c8_batched"] / rps["c8_unbatched"],
            "c8_batched_p99_ms": 1e3 * max(r["latency_s"]["p99"] for r in runs["c8_batched"]),
        }
    names = list(summary)
    for name in names:
        print(name, json.dumps({k: round(v, 3) for k, v in summary[name].items()}))
    first = names[0]
    for name in names[1:]:
        ratios = {k: round(summary[name][k] / summary[first][k], 3) for k in summary[first]}
        print(f"{name} / {first}", json.dumps(ratios))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
