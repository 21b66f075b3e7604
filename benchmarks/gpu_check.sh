#!/usr/bin/env bash
# fishopt's CUDA paths, in one bounded run on a GPU machine that cannot reach the network.
#
# Prepare on the CPU machine first (nothing is downloaded on the GPU machine):
#   python benchmarks/gpu_carry.py runs/default/model.pt [more model.pt] --data ../shared/data/fish   # -> .gpu/
#   wheels of the packages the GPU machine lacks (kornia, hydra-core, efficientnet-lite-pytorch, ...) in .whl/
# Then, on the GPU machine, from the checkout:
#   bash benchmarks/gpu_check.sh            # results into $OUT (or benchmarks/results-gpu-check)
#
# Stages (STAGES, default "env tests bench train"), each under its own time limit so one slow stage cannot take
# the others' time:
#   env    GPU, driver, versions -> env.txt
#   tests  the gpu-marked tests (pytest -m gpu)
#   bench  `fishopt benchmark --device cuda` on every checkpoint in .gpu/runs/* (or $BENCH_RUNS): the registry's
#          CUDA variants (eager FP32, FP16/BF16 autocast, channels-last, torch.compile, CUDA graphs), accuracy on
#          the carried test split, results -> <run>.json / <run>.md
#   train  a short CUDA training run (Lightning, accelerator=gpu) on the carried images
#   sweep  benchmarks/sweep.py over .gpu/sweep.txt (recipes x $SWEEP_SEEDS, $SWEEP_PARALLEL at a time, on the GPU)
#          -> sweep.json / sweep.md
# Everything is logged to gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="${OUT:-$ROOT/benchmarks/results-gpu-check}"
CARRY="${CARRY:-$ROOT/.gpu}"
BATCHES="${BATCHES:-1,256,2048}"
STAGES=" ${STAGES:-env tests bench train} "
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg FISHOPT_CACHE=/tmp/fishopt-cache FISHOPT_DATA="$CARRY/data/fish"
PY="${PYTHON:-python3}"
FISHOPT=("$PY" -c "import sys; from fishopt.cli import main; sys.exit(main())")
stage() { printf '\n===== %s (%s) =====\n' "$1" "$(date -u +%H:%M:%S)"; }
want() { [[ "$STAGES" == *" $1 "* ]]; }

stage "wheels"
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl \
    || echo "wheel install failed"
  export PYTHONPATH="/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi

if want env; then
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
fi

if want tests; then
  stage "pytest -m gpu"
  timeout "${TESTS_TIMEOUT:-240}" "$PY" -m pytest -m gpu -p no:cacheprovider -q -rs --no-header \
    --continue-on-collection-errors tests 2>&1 | tail -n 60
fi

if want bench; then
  for run in ${BENCH_RUNS:-$(cd "$CARRY/runs" && ls)}; do
    ckpt="$CARRY/runs/$run/model.pt"
    stage "CUDA benchmark rows: $run (registry variants of device cuda; the CPU FP32 reference is measured too)"
    timeout "${BENCH_TIMEOUT:-300}" "${FISHOPT[@]}" benchmark --checkpoint "$ckpt" --device cuda --out "/tmp/gpu-$run" \
      --overwrite --batch-sizes "$BATCHES" --no-malloc-tuning ${VARIANTS:+--variants "$VARIANTS"} \
      && cp "/tmp/gpu-$run/results.json" "$OUT/$run.json" && cp "/tmp/gpu-$run/REPORT.md" "$OUT/$run.md"
  done
fi

if want train; then
  stage "CUDA training (2 epochs, selection run + refit; a smoke test on the carried images, split by file)"
  timeout "${TRAIN_TIMEOUT:-150}" "${FISHOPT[@]}" train trainer.accelerator=gpu trainer.max_epochs=2 \
    trainer.progress_bar=false data.leaky_split=true out_dir=/tmp/gpu-runs run_name=cuda-smoke 2>&1 \
    | grep -vE "UserWarning|warnings.warn" | tail -n 25
fi

if want sweep && [ -f "$CARRY/sweep.txt" ]; then
  stage "recipe sweep on the GPU: $(grep -cvE '^\s*(#|$)' "$CARRY/sweep.txt") recipes x seeds ${SWEEP_SEEDS:-0}"
  "$PY" -c "from fishopt.checkpoint import load_checkpoint; from fishopt.data.cache import load_images
from fishopt.data.discovery import find_dataset
ds = find_dataset(None); load_images([ds.root / s.path for s in ds.samples], (120, 160))" \
    && echo "decode cache warm"
  timeout "${SWEEP_TIMEOUT:-420}" "$PY" benchmarks/sweep.py --recipes "$CARRY/sweep.txt" --seeds "${SWEEP_SEEDS:-0}" \
    --out /tmp/sweep --parallel "${SWEEP_PARALLEL:-8}" --timeout "${SWEEP_RUN_TIMEOUT:-400}" -- \
    trainer.accelerator=gpu ${SWEEP_COMMON:-}
  cp /tmp/sweep/sweep.json /tmp/sweep/sweep.md "$OUT/" 2>/dev/null
fi

stage "done"
ls -la "$OUT"
