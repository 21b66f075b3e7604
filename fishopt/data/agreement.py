"""Compare found groups with reference groups: pairwise precision/recall and cluster-level leaks.

Everything is computed from contingency counts (images per pair of labels), never by looping over
image pairs: the number of same-label pairs of a label with ``n`` images is ``n * (n - 1) / 2``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fishopt.data.groups import GroupEntry
from fishopt.errors import DataError


def _pairs(counts: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in counts)


def agreement(pred: dict[str, GroupEntry], ref: dict[str, GroupEntry]) -> dict[str, float | int]:
    """Score predicted groups against reference groups.

    Args:
        pred: Image path -> predicted entry.
        ref: Image path -> reference entry; must cover the same images.

    Returns:
        ``images``; ``pred_groups``, ``ref_groups``, ``pred_clusters``, ``ref_clusters`` (counts);
        ``pred_pairs``, ``ref_pairs``, ``true_pairs`` (same-group pairs); ``precision`` and
        ``recall`` of same-group pairs (1.0 when there are none to find or none found);
        ``cluster_leaks``: reference same-group pairs split across predicted clusters.

    Raises:
        DataError: If the two mappings do not describe the same images.
    """
    if set(pred) != set(ref):
        only = sorted(set(pred) ^ set(ref))
        raise DataError(
            f"predicted and reference groups cover different images ({len(only)} differ, e.g. {only[0]!r}); "
            "compare groups computed on the same data root"
        )
    paths = list(ref)
    pred_pairs = _pairs(Counter(pred[p].group for p in paths).values())
    ref_pairs = _pairs(Counter(ref[p].group for p in paths).values())
    true_pairs = _pairs(Counter((pred[p].group, ref[p].group) for p in paths).values())
    kept_in_cluster = _pairs(Counter((pred[p].cluster, ref[p].group) for p in paths).values())
    return {
        "images": len(paths),
        "pred_groups": len({pred[p].group for p in paths}),
        "ref_groups": len({ref[p].group for p in paths}),
        "pred_clusters": len({pred[p].cluster for p in paths}),
        "ref_clusters": len({ref[p].cluster for p in paths}),
        "pred_pairs": pred_pairs,
        "ref_pairs": ref_pairs,
        "true_pairs": true_pairs,
        "precision": true_pairs / pred_pairs if pred_pairs else 1.0,
        "recall": true_pairs / ref_pairs if ref_pairs else 1.0,
        "cluster_leaks": ref_pairs - kept_in_cluster,
    }
