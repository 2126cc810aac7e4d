"""Where training reads its data and keeps its checkpoints, and where it writes a model."""

from __future__ import annotations

import os
from pathlib import Path

from vision.model.manifest import default_model_path

#: The checkout this package runs from (training runs from a clone, next to ``../shared``).
REPO = Path(__file__).resolve().parent.parent


def default_data_root(repo: Path | None = None) -> Path:
    """The Animal-Pose folder: ``$HINDSIGHT_ANIMALPOSE`` if set, else ``<repo>/../shared/data/animalpose``."""
    env = os.environ.get("HINDSIGHT_ANIMALPOSE")
    if env and repo is None:
        return Path(env)
    return (repo or REPO).parent / "shared" / "data" / "animalpose"


def shipped_manifest() -> Path:
    """The manifest training writes by default and continues from: the runtime's model (package data)."""
    return default_model_path()


def checkpoint_root() -> Path:
    """Folder of training checkpoints: ``$HINDSIGHT_CHECKPOINTS``, else ``checkpoints`` in Hindsight's data folder.

    The data folder is ``$HINDSIGHT_DATA_DIR`` or the user's data directory (as the dashboard's), outside
    the work tree, so that a run survives a fresh checkout on the same machine and ``--resume`` finds it.
    """
    env = os.environ.get("HINDSIGHT_CHECKPOINTS")
    if env:
        return Path(env)
    data = os.environ.get("HINDSIGHT_DATA_DIR")
    if data:
        return Path(data) / "checkpoints"
    from platformdirs import user_data_dir

    return Path(user_data_dir("hindsight", appauthor=False)) / "checkpoints"
