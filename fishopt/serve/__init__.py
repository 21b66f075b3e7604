"""``fishopt serve``: serve one artifact over KServe's Open Inference Protocol v2, with batching and metrics.

Modules (importing this package imports none of FastAPI, uvicorn or prometheus-client):

- :mod:`fishopt.serve.model`: the served model; the ONE module that calls the artifact registry and runtimes.
- :mod:`fishopt.serve.images`: encoded image bytes -> uint8 RGB at the model's size (the one decode call).
- :mod:`fishopt.serve.protocol`: the v2 wire format (JSON, Triton binary data, classification).
- :mod:`fishopt.serve.batcher`: dynamic micro-batching under a bounded queue with deadlines.
- :mod:`fishopt.serve.metrics`: the Prometheus metrics; :mod:`fishopt.serve.monitor`: the drift-monitor hook.
- :mod:`fishopt.serve.app`: the FastAPI routes; :mod:`fishopt.serve.server`: uvicorn with a graceful SIGTERM.
- :mod:`fishopt.serve.load`: the load generator behind ``fishopt serve-bench``.
"""
