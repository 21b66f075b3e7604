# fishopt serve: an Open Inference Protocol v2 server for one fishopt artifact (CPU).
#
# Build from the repository root (the image holds fishopt, not a model):
#   docker build -f docker/serve.Dockerfile -t fishopt-serve .
# Run with an artifact folder (fishopt export/quantize/compile --out DIR, or a fishopt deploy --target cpu bundle):
#   docker run --rm -p 8000:8000 -v "$PWD/runs/artifacts/onnxruntime-int8:/model:ro" fishopt-serve
# Extra server options go after the image name, e.g. `fishopt-serve --threads 4 --max-batch 32`.
FROM python:3.11-slim

# EXTRAS: the runtimes to install beside the server (add openvino to serve OpenVINO IR artifacts).
ARG EXTRAS=serve,onnx
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALLOC_TRIM_THRESHOLD_=2147483647

WORKDIR /opt/fishopt
COPY setup.cfg pyproject.toml constraints.txt README.md ./
COPY fishopt ./fishopt

# torch first, from its CPU-only index (the default wheel is the multi-GB CUDA build), then fishopt, all pinned.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -c constraints.txt ".[${EXTRAS}]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fishopt

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["fishopt", "serve", "/model", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--threads", "2"]
