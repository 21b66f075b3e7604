"""Benchmark every registered variant: accuracy against latency, one row per variant.

Entry point: :func:`fishopt.benchmarks.harness.run_benchmark` (CLI: ``fishopt benchmark``).

Modules, one concern each:

- ``variants``: pick formats from the registry, build them through :func:`fishopt.artifacts.build.build`, load
  their runtime; skipped/failed rows.
- ``accuracy``: test-split metrics and deltas against the FP32 reference, agreement, collapse flag.
- ``timing``: interleaved timing rounds, inputs, end-to-end calls, memory probe, achieved GOPS.
- ``stats``: percentiles, median confidence interval, CV, round orders.
- ``fingerprint``: CPU/ISA/GPU, versions, git, malloc settings, background load sampler.
- ``recommend``: fastest variant within the accuracy budget per target.
- ``report`` / ``markdown`` / ``plots`` / ``schema``: results.json, results.csv, REPORT.md, pareto.png,
  confusion matrix, rich table, and the JSON schema with its validator.

Importing this package imports nothing heavy.
"""
