"""The dataset registry: one registration makes a dataset known to the CLI, links, presets and the sidebar.

A dataset is a name, a loader, the label the dashboard shows, the architecture it is meant for and,
for datasets read from files, how to tell whether its files are there and where they come from.
Built-in datasets register at the end of :mod:`ssd_core.data`; others from installed packages (the
``ssd_core.datasets`` entry-point group) or from a ``--plugin FILE`` (the dashboard:
the ``PLUGINS`` setting).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..plugins import load_entry_points, lookup
from ..progress import OptionalProgress
from .dataset import ImageDataset

ENTRY_POINT_GROUP = "ssd_core.datasets"
FileLoader = Callable[[str | None, bool, OptionalProgress], ImageDataset]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset. ``load`` takes no arguments when ``files_present`` is None (the data is
    made in code, like digits and shapes); otherwise ``load(data_dir, download, progress)``."""

    name: str
    load: Callable[..., ImageDataset]
    label: str  # what the sidebar shows, e.g. "Fashion-MNIST — 28×28 clothes"
    default_model: str = "smallcnn"  # the architecture it is meant for (its shipped checkpoint, if any)
    files_present: Callable[[str | None], bool] | None = None  # None: needs no files
    hint: str | None = None  # where its files come from, for the sentence shown when they are missing

    @property
    def needs_files(self) -> bool:
        return self.files_present is not None

    def available(self, data_dir: str | None = None) -> bool:
        """Whether it can be loaded here without a download."""
        return self.files_present is None or bool(self.files_present(data_dir))

    def read(self, data_dir: str | None = None, download: bool = False,
             progress: OptionalProgress = None) -> ImageDataset:
        return self.load() if self.files_present is None else self.load(data_dir, download, progress)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    load: Callable[..., ImageDataset],
    *,
    label: str | None = None,
    default_model: str = "smallcnn",
    files_present: Callable[[str | None], bool] | None = None,
    hint: str | None = None,
) -> DatasetSpec:
    """Make a dataset known everywhere by ``name`` (letters, digits and '_'). Registering the same
    loader again changes nothing (a re-imported plugin); another loader under a taken name is an error."""
    if not name or not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"A dataset name must be letters, digits and '_'; got {name!r}.")
    spec = DatasetSpec(name, load, label or name, default_model, files_present, hint)
    existing = _DATASETS.get(name)
    if existing is not None and _origin(existing.load) != _origin(load):
        raise ValueError(f"A dataset named '{name}' is already registered (by {existing.load.__module__}).")
    _DATASETS[name] = spec
    return spec


def _origin(function: Callable) -> tuple[str | None, str | None]:
    return getattr(function, "__qualname__", None), getattr(function, "__module__", None)


def _load_entry_points() -> None:
    """Import the datasets installed packages declare in the ``ssd_core.datasets`` group (once)."""
    load_entry_points(ENTRY_POINT_GROUP)


def available_datasets() -> dict[str, DatasetSpec]:
    """Every registered dataset, in registration order (the built-ins first)."""
    _load_entry_points()
    return dict(_DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; an unknown name is one clear sentence."""
    return lookup(available_datasets(), name, "dataset")
