#!/usr/bin/env python3
"""Merge the results of several ``fishopt benchmark`` runs (e.g. one per checkpoint) into one report.

One row per model x variant; the table, results.csv and the plots carry a ``model`` column, and
``settings.merged_runs`` lists each run's checkpoint and background load (compare ratios only between runs with
similar load).

Usage:
    python benchmarks/merge_results.py runs/bench-baseline runs/bench-lite0 --out runs/bench-merged
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of fishopt benchmark runs")
    parser.add_argument("--out", required=True, type=Path, help="folder for the merged report (created)")
    args = parser.parse_args(argv)
    from fishopt.benchmarks.report import merge, write_all

    results = [json.loads((run / "results.json").read_text()) for run in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    write_all(merge(results), args.out)
    print(args.out / "REPORT.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
