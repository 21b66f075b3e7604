#!/usr/bin/env bash
# fishopt's CUDA paths, in one bounded run on a GPU machine that cannot reach the network.
#
# Prepare on the CPU machine first (nothing is downloaded on the GPU machine):
#   python benchmarks/gpu_carry.py runs/default/model.pt --data ../shared/data/fish   # -> .gpu/
#   wheels of the packages the GPU machine lacks (kornia, hydra-core, ...) in .whl/
# Then, on the GPU machine, from the checkout:
#   bash benchmarks/gpu_check.sh            # results into $OUT (or benchmarks/results-gpu-check)
#
# Stages, each under its own time limit so one slow stage cannot take the others' time:
#   1. environment (GPU, driver, versions) -> env.txt
#   2. the gpu-marked tests (pytest -m gpu)
#   3. `fishopt benchmark --device cuda` on every checkpoint in .gpu/runs/*: the registry's CUDA variants (eager
#      FP32, FP16/BF16 autocast, channels-last, torch.compile, CUDA graphs), accuracy on the carried test split
#   4. a short CUDA training run (Lightning, accelerator=gpu) on the carried images
# Everything is logged to gpu_check.log; results.json/REPORT.md of each benchmark are copied next to it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="${OUT:-$ROOT/benchmarks/results-gpu-check}"
CARRY="${CARRY:-$ROOT/.gpu}"
BATCHES="${BATCHES:-1,256,2048}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg FISHOPT_CACHE=/tmp/fishopt-cache FISHOPT_DATA="$CARRY/data/fish"
PY="${PYTHON:-python3}"
stage() { printf '\n===== %s (%s) =====\n' "$1" "$(date -u +%H:%M:%S)"; }

stage "wheels"
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl \
    || echo "wheel install failed"
  export PYTHONPATH="/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi

stage "environment"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for d in ("kornia", "pytorch-lightning", "hydra-core", "onnx", "onnxruntime", "onnxscript", "triton", "numpy", "torchao",
          "openvino", "tensorrt", "efficientnet-lite-pytorch"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "not installed")
import fishopt
print("fishopt", fishopt.__version__, "imported from", fishopt.__file__)
EOF
} | tee "$OUT/env.txt"

stage "pytest -m gpu"
timeout 240 "$PY" -m pytest -m gpu -p no:cacheprovider -q -rs --no-header --continue-on-collection-errors tests 2>&1 | tail -n 60

for ckpt in "$CARRY"/runs/*/model.pt; do
  name=$(basename "$(dirname "$ckpt")")
  stage "CUDA benchmark rows: $name (registry variants of device cuda; the CPU FP32 reference is measured too)"
  timeout "${BENCH_TIMEOUT:-300}" "$PY" -c "from fishopt.cli import main; main()" benchmark --checkpoint "$ckpt" \
    --device cuda --out "/tmp/gpu-$name" --overwrite --batch-sizes "$BATCHES" --no-malloc-tuning \
    ${VARIANTS:+--variants "$VARIANTS"} \
    && cp "/tmp/gpu-$name/results.json" "$OUT/$name.json" && cp "/tmp/gpu-$name/REPORT.md" "$OUT/$name.md"
done

stage "CUDA training (2 epochs, selection run + refit; a smoke test on the carried test images, split by file)"
timeout 150 "$PY" -c "from fishopt.cli import main; main()" train trainer.accelerator=gpu trainer.max_epochs=2 \
  trainer.progress_bar=false data.leaky_split=true out_dir=/tmp/gpu-runs run_name=cuda-smoke 2>&1 | grep -vE "UserWarning|warnings.warn" | tail -n 25

stage "done"
ls -la "$OUT"
