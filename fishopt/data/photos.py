"""Find the source photos of the fish images from their content alone.

The dataset's images are flips and rotations (frame enlarged, then resized unevenly) of a few hundred
photos. Per class: SIFT features (:mod:`fishopt.data.features`), a bag-of-words shortlist of likely
copies for every image, RANSAC affine verification of each shortlisted pair (direct and mirrored),
then connected components of the verified pairs at two strengths: ``group`` (same photo) and
``cluster`` (weaker matches: the same fish or the same setup). File names and order are never used.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fishopt.data.discovery import FishDataset
from fishopt.data.features import MIRROR_PERMUTATION, Features, bag_of_words, extract_all, load_features, run_parallel
from fishopt.data.groups import GroupEntry
from fishopt.errors import DataError, require

log = logging.getLogger(__name__)

ALGORITHM_VERSION = "sift-bow-affine-v1"  # part of cache keys of found groups; bump when results change


@dataclass(frozen=True)
class MatchConfig:
    """Settings of the photo finder (defaults tuned on the shared fish data, see ``docs``/report).

    Two images are linked by their verified inlier count (RANSAC affine, direct or mirrored).
    Groups: images linked by ``core_inliers`` or more form cores (certainly one photo); two cores
    join when at least ``group_support`` verified pairs between them reach ``group_inliers`` (one
    lucky pair is not enough). Clusters: single linkage at ``cluster_inliers``, plus the groups.

    Attributes:
        words: Visual words of the per-class bag-of-words vocabulary.
        neighbors: Most similar images verified per image in the first round.
        ratio: Lowe's ratio test threshold for descriptor matches.
        reproj_px: RANSAC inlier distance in pixels (working-size image).
        core_inliers: Inliers that alone put two images in one group.
        group_inliers: Inliers of a pair that supports joining two cores.
        group_support: Supporting pairs needed to join two cores into one group.
        cluster_inliers: Inliers that put two images in one cluster.
        rounds: Verification rounds; later rounds try to join the groups found so far.
        bridge_groups: Other groups (most similar first) each group is compared with per round.
        bridge_pairs: Image pairs verified per compared pair of groups.
        seed: Seed of the vocabulary sampling.
    """

    words: int = 512
    neighbors: int = 6
    ratio: float = 0.8
    reproj_px: float = 3.0
    core_inliers: int = 28
    group_inliers: int = 20
    group_support: int = 3
    cluster_inliers: int = 13
    rounds: int = 3
    bridge_groups: int = 8
    bridge_pairs: int = 10
    seed: int = 0


def find_groups(
    dataset: FishDataset,
    *,
    workers: int | None = None,
    cache: str | os.PathLike[str] | None = None,
    progress: bool = True,
    config: MatchConfig | None = None,
) -> dict[str, GroupEntry]:
    """Find the source photo (group) and cluster of every image, by image content only.

    Args:
        dataset: The images.
        workers: Processes (default: CPU count).
        cache: Cache folder for per-image features (default :func:`fishopt.data.cache.cache_dir`).
        progress: Show progress bars.
        config: Matching settings (default :class:`MatchConfig`).

    Returns:
        Image path -> :class:`GroupEntry` with ids ``"<class>/g000"`` and ``"<class>/c000"``.

    Raises:
        DataError: If the dataset has no images or an image cannot be decoded (names the file).
    """

    require("cv2", "groups")
    config = config or MatchConfig()
    if not dataset.samples:
        raise DataError(f"no images under {str(dataset.root)!r}; nothing to group")
    paths = [s.path for s in dataset.samples]
    feats = extract_all([dataset.root / p for p in paths], cache=cache, workers=workers, progress=progress)
    classes = [_ClassIndex.build(label, idx, feats, config) for label, idx in _class_members(dataset).items()]
    scores: dict[tuple[int, int], int] = {}
    todo = [pair for c in classes for pair in c.nearest_pairs(config.neighbors)]
    for _ in range(config.rounds):
        scores.update(verify_pairs(feats, todo, config, workers=workers, progress=progress))
        todo = sorted({pair for c in classes for pair in c.bridge_pairs(scores, config)} - set(scores))
        if not todo:
            break
    entries: dict[str, GroupEntry] = {}
    for c in classes:
        entries.update(_name_components(c, [paths[k] for k in c.ids], scores, config))
    log.info("found %d groups in %d images", len({e.group for e in entries.values()}), len(entries))
    return entries


def _class_members(dataset: FishDataset) -> dict[str, list[int]]:
    """Return class -> positions of its samples."""
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(dataset.samples):
        by_class[sample.label].append(i)
    return dict(by_class)


@dataclass(frozen=True)
class _ClassIndex:
    """The images of one class and their bag-of-words similarities."""

    label: str
    ids: list[int]
    sim: np.ndarray

    @classmethod
    def build(cls, label: str, ids: list[int], feats: Sequence[Features], config: MatchConfig) -> _ClassIndex:
        vec = bag_of_words([feats[k] for k in ids], config.words, config.seed)
        sim = vec @ vec.T
        np.fill_diagonal(sim, -np.inf)
        return cls(label, ids, sim)

    def local_edges(self, scores: dict[tuple[int, int], int]) -> list[tuple[int, int, int]]:
        """Return the verified pairs of this class as (local i, local j, inliers)."""
        local = {g: k for k, g in enumerate(self.ids)}
        return [(local[i], local[j], s) for (i, j), s in scores.items() if i in local and j in local]

    def _global(self, pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        return sorted({(self.ids[min(a, b)], self.ids[max(a, b)]) for a, b in pairs})

    def nearest_pairs(self, k: int) -> list[tuple[int, int]]:
        """Return each image paired with its ``k`` most similar images."""
        k = min(k, len(self.ids) - 1)
        if k < 1:
            return []
        nearest = np.argpartition(-self.sim, k - 1, axis=1)[:, :k]
        return self._global((a, b) for a, row in enumerate(nearest) for b in row.tolist())

    def bridge_pairs(self, scores: dict[tuple[int, int], int], config: MatchConfig) -> list[tuple[int, int]]:
        """Return pairs that could join two current groups.

        For each group: its ``bridge_groups`` most similar other groups, and for each of those the
        ``bridge_pairs`` most similar cross pairs.
        """
        groups, _ = group_and_cluster(len(self.ids), self.local_edges(scores), config)
        labels, comp = np.unique(np.asarray(groups), return_inverse=True)
        if len(labels) < 2:
            return []
        order = np.argsort(comp, kind="stable")
        starts = np.searchsorted(comp[order], np.arange(len(labels)))
        pairs = []
        for p in range(len(labels)):
            members = np.flatnonzero(comp == p)
            best = self.sim[members][:, order].max(0)
            per_comp = np.maximum.reduceat(best, starts)
            per_comp[p] = -np.inf
            for q in np.argsort(-per_comp)[: config.bridge_groups]:
                others = np.flatnonzero(comp == q)
                block = self.sim[np.ix_(members, others)]
                top = np.argsort(-block, axis=None)[: config.bridge_pairs]
                pairs.extend((members[t // len(others)], others[t % len(others)]) for t in top.tolist())
        return self._global(pairs)


def _ratio_matches(a: np.ndarray, b: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Return index arrays (ia, ib) of the matches of ``a`` in ``b`` passing Lowe's ratio test.

    Uses OpenCV's single-threaded gemm: a threaded BLAS on these tiny products is many times slower
    on a loaded machine.
    """
    import cv2

    if len(a) == 0 or len(b) < 2:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    d2 = cv2.gemm(a, b, -2.0, None, 0.0, flags=cv2.GEMM_2_T)
    d2 += (a**2).sum(1)[:, None]
    d2 += (b**2).sum(1)[None, :]
    rows = np.arange(len(a))
    best = d2.argmin(1)
    first = d2[rows, best].copy()
    d2[rows, best] = np.inf
    keep = first < (ratio**2) * d2.min(1)
    return rows[keep], best[keep]


def _inliers(src: np.ndarray, dst: np.ndarray, mirrored: bool, config: MatchConfig) -> int:
    """Return the RANSAC affine inlier count of the matched points, 0 for an implausible transform."""
    import cv2

    if len(src) < max(3, config.cluster_inliers):
        return 0
    matrix, mask = cv2.estimateAffine2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=config.reproj_px, maxIters=2000, confidence=0.995
    )
    if matrix is None:
        return 0
    linear = matrix[:, :2]
    det = float(np.linalg.det(linear))
    sv = np.linalg.svd(linear, compute_uv=False)
    if (det < 0) != mirrored or sv[1] < 0.2 or sv[0] > 5.0 or sv[0] > 3.0 * sv[1]:
        return 0
    return int(mask.sum())


def match_score(fa: Features, fb: Features, config: MatchConfig) -> int:
    """Return the verified inliers between two images: the better of direct and mirrored matching."""
    a = fa.desc.astype(np.float32)
    b = fb.desc.astype(np.float32)
    best = 0
    for mirrored, target in ((False, b), (True, b[:, MIRROR_PERMUTATION])):
        ia, ib = _ratio_matches(a, target, config.ratio)
        best = max(best, _inliers(fa.xy[ia], fb.xy[ib], mirrored, config))
    return best


_WORKER_FEATS: dict[str, Features] = {}


def _verify_chunk(job: tuple[dict[int, str], list[tuple[int, int]], MatchConfig]) -> list[int]:
    """Score a chunk of pairs in a worker; features are read from the cache (memoized per process)."""
    import cv2

    cv2.setNumThreads(1)
    entries, pairs, config = job
    if len(_WORKER_FEATS) > 4096:
        _WORKER_FEATS.clear()
    feats = {}
    for i, entry in entries.items():
        if entry not in _WORKER_FEATS:
            _WORKER_FEATS[entry] = load_features(entry)
        feats[i] = _WORKER_FEATS[entry]
    return [match_score(feats[i], feats[j], config) for i, j in pairs]


def verify_pairs(
    feats: Sequence[Features],
    pairs: list[tuple[int, int]],
    config: MatchConfig,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> dict[tuple[int, int], int]:
    """Return the verified inliers of every candidate pair, scored on ``workers`` processes."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(pairs) < 256:
        from tqdm import tqdm

        it = tqdm(pairs, desc="verifying pairs", unit="pair", disable=not progress)
        return {(i, j): match_score(feats[i], feats[j], config) for i, j in it}
    entries = [f.entry for f in feats]
    if not all(entries):
        return verify_pairs(feats, pairs, config, workers=1, progress=progress)
    chunks = [pairs[s : s + 400] for s in range(0, len(pairs), 400)]
    jobs = [({k: entries[k] for ij in chunk for k in ij}, chunk, config) for chunk in chunks]
    scores: dict[tuple[int, int], int] = {}
    for chunk, result in zip(
        chunks, run_parallel(_verify_chunk, jobs, workers, progress, "verifying pairs", "chunk"), strict=True
    ):
        scores.update(zip(chunk, result, strict=True))
    return scores


def components(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Return a component label (the smallest member) for each of ``n`` nodes joined by ``edges``."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(x) for x in range(n)]


def group_and_cluster(
    n: int, edges: Sequence[tuple[int, int, int]], config: MatchConfig
) -> tuple[list[int], list[int]]:
    """Return the group and cluster label of each of ``n`` images, from verified ``(i, j, inliers)`` edges.

    Groups always nest in clusters.
    """
    core = components(n, [(i, j) for i, j, s in edges if s >= config.core_inliers])
    support = Counter(
        (min(core[i], core[j]), max(core[i], core[j]))
        for i, j, s in edges
        if s >= config.group_inliers and core[i] != core[j]
    )
    joins = [pair for pair, count in support.items() if count >= config.group_support]
    groups = components(n, joins + [(i, c) for i, c in enumerate(core)])
    weak = [(i, j) for i, j, s in edges if s >= config.cluster_inliers]
    clusters = components(n, weak + [(i, g) for i, g in enumerate(groups)])
    return groups, clusters


def _numbered(label: str, kind: str, paths: list[str], comp: list[int]) -> list[str]:
    """Name components ``<label>/<kind>000``..., numbered in the order of their first path."""
    first: dict[int, str] = {}
    for path, c in zip(paths, comp, strict=True):
        if c not in first or path < first[c]:
            first[c] = path
    number = {c: n for n, c in enumerate(sorted(first, key=first.__getitem__))}
    return [f"{label}/{kind}{number[c]:03d}" for c in comp]


def _name_components(
    index: _ClassIndex, paths: list[str], scores: dict[tuple[int, int], int], config: MatchConfig
) -> dict[str, GroupEntry]:
    """Return the named group and cluster of each image of one class."""
    groups, clusters = group_and_cluster(len(index.ids), index.local_edges(scores), config)
    names = zip(_numbered(index.label, "g", paths, groups), _numbered(index.label, "c", paths, clusters), strict=True)
    return {p: GroupEntry(group=g, cluster=c) for p, (g, c) in zip(paths, names, strict=True)}
