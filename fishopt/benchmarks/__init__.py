"""Benchmark every registered variant: accuracy against latency, one row per variant.

Entry point: :func:`fishopt.benchmarks.harness.run_benchmark` (CLI: ``fishopt benchmark``).

Modules, one concern each:

- ``variants``: pick formats from the registry, build them through :func:`fishopt.artifacts.build.build`, load
  their runtime; skipped/failed rows.
- ``accuracy``: test-split metrics and deltas against the FP32 reference, agreement, collapse flag.
- ``workers``: one worker process per variant; timing rounds interleaved across workers, one at a time; the
  model-only, end-to-end (decode / preprocess / model) and today's-pipeline jobs.
- ``timing``: timing plans, batch sizes, inputs, memory probe, achieved GOPS.
- ``camera``: camera-size JPEGs (re-encoded test images, cached) and the fast-path agreement verdict.
- ``roofline``: measured GEMM peaks per precision, each row's compute precision.
- ``profile``: per-operator profiles with the runtimes' own profilers.
- ``stats``: percentiles, median confidence interval, CV, round orders.
- ``fingerprint``: CPU/ISA/GPU, versions, git, malloc settings, background load sampler.
- ``recommend``: fastest variant within the accuracy budget per target.
- ``report`` / ``markdown`` / ``plots`` / ``schema``: results.json, results.csv, REPORT.md, pareto.png,
  e2e_split.png, confusion matrix, rich table, merging runs, and the JSON schema with its validator.

Importing this package imports nothing heavy.
"""
