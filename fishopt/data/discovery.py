"""Find the class folders and images of a fish dataset in any of the Kaggle layouts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fishopt.errors import DataError

ENV_VAR = "FISHOPT_DATA"
#: The nine species of Kaggle's "A Large Scale Fish Dataset".
FISH_SPECIES = (
    "Black Sea Sprat",
    "Gilt-Head Bream",
    "Hourse Mackerel",
    "Red Mullet",
    "Red Sea Bream",
    "Sea Bass",
    "Shrimp",
    "Striped Red Mullet",
    "Trout",
)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
MASK_SUFFIX = " GT"


@dataclass(frozen=True)
class Sample:
    """One image of the dataset.

    Attributes:
        path: Path relative to the dataset root, with forward slashes.
        label: Class name.
    """

    path: str
    label: str


@dataclass(frozen=True)
class FishDataset:
    """A dataset found on disk.

    Attributes:
        root: The dataset root (where ``groups.csv`` lives, if any).
        class_names: Sorted class names; the index of a name is its label id.
        samples: Every image, sorted by path.
        ignored: Class folders under the root that were left out because ``expected_classes`` did not name
            them: folder name -> image count.
    """

    root: Path
    class_names: tuple[str, ...]
    samples: tuple[Sample, ...]
    ignored: dict[str, int] = field(default_factory=dict)

    def class_index(self, name: str) -> int:
        """Return the label id of class ``name``."""
        return self.class_names.index(name)

    def abspath(self, sample: Sample) -> Path:
        """Return the absolute path of a sample's image."""
        return self.root / sample.path


def data_root_from_env(root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data root from an explicit path or the ``FISHOPT_DATA`` variable.

    Args:
        root: An explicit path; wins over the environment.

    Returns:
        The path (not yet checked).

    Raises:
        DataError: If neither is given.
    """
    value = root if root is not None else os.environ.get(ENV_VAR)
    if not value:
        raise DataError(
            f"no data root given: pass --data DIR or set {ENV_VAR} to the folder holding the fish "
            "dataset (e.g. ../shared/data/fish or the unpacked Kaggle download)"
        )
    return Path(value).expanduser()


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _class_dirs(folder: Path) -> dict[str, Path]:
    """Map class name -> image folder for the candidate layout rooted at ``folder``.

    A class folder either holds images itself or holds a same-named subfolder with them
    (the Kaggle ``<class>/<class>/`` layout). ``<class> GT`` mask folders are never taken.
    """
    found: dict[str, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name.endswith(MASK_SUFFIX):
            continue
        nested = sub / sub.name
        found[sub.name] = nested if nested.is_dir() else sub
    return found


def _layout_root(root: Path) -> Path:
    """Return the folder whose subfolders are the classes."""
    for candidate in (root / "Fish_Dataset" / "Fish_Dataset", root / "Fish_Dataset", root):
        if candidate.is_dir() and any(p.is_dir() for p in candidate.iterdir()):
            return candidate
    return root


def find_dataset(
    root: str | os.PathLike[str] | None = None,
    expected_classes: tuple[str, ...] | None = None,
) -> FishDataset:
    """Find the classes and images under ``root``.

    Accepts ``Fish_Dataset/Fish_Dataset/<class>/<class>/``, ``Fish_Dataset/<class>/<class>/`` and
    ``<root>/<class>/``; image suffixes .png/.jpg/.jpeg in any case.

    Args:
        root: Data root; defaults to ``$FISHOPT_DATA``.
        expected_classes: If given, the classes the data must have (e.g. a checkpoint's class map).

    Returns:
        The dataset with sorted class names and samples.

    Raises:
        DataError: If the root is missing or empty, a class is missing or has no images.
    """
    base = data_root_from_env(root)
    if not base.is_dir():
        raise DataError(f"data root {str(base)!r} does not exist or is not a folder; pass --data DIR or set {ENV_VAR}")
    layout = _layout_root(base)
    dirs = _class_dirs(layout)
    if not dirs:
        raise DataError(
            f"no class folders under {str(base)!r}; expected <root>/<class>/ or the Kaggle layout "
            "Fish_Dataset/<class>/<class>/ with image files"
        )
    if expected_classes is not None:
        missing = sorted(set(expected_classes) - set(dirs))
        if missing:
            raise DataError(
                f"class folder(s) missing under {str(layout)!r}: {', '.join(missing)}; "
                f"expected: {', '.join(expected_classes)}"
            )
        ignored = {
            name: sum(1 for p in folder.iterdir() if _is_image(p))
            for name, folder in dirs.items()
            if name not in expected_classes
        }
        dirs = {name: dirs[name] for name in expected_classes}
    else:
        ignored = {}
    samples: list[Sample] = []
    for name, folder in dirs.items():
        images = sorted(p for p in folder.iterdir() if _is_image(p))
        if not images:
            raise DataError(
                f"class {name!r} has no images in {str(folder)!r} (.png/.jpg/.jpeg); "
                "remove the empty folder or add its images"
            )
        samples.extend(Sample(p.relative_to(base).as_posix(), name) for p in images)
    class_names = tuple(sorted(dirs))
    return FishDataset(
        root=base, class_names=class_names, samples=tuple(sorted(samples, key=lambda s: s.path)), ignored=ignored
    )


def missing_species(class_names: tuple[str, ...] | list[str]) -> list[str]:
    """The species of the fish dataset that data holding only some of them lacks (``[]`` for other data)."""
    present = set(class_names)
    if not present or not present < set(FISH_SPECIES):
        return []
    return [s for s in FISH_SPECIES if s not in present]
