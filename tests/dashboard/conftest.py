from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vision.demo import ensure_demo
from vision.storage import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """Demo data built once per session, copied for each test that changes it."""
    d = tmp_path_factory.mktemp("demo_template")
    store = Store(d)
    info = ensure_demo(store, weeks=6, size=(320, 180))
    store.engine.dispose()
    return d, info


@pytest.fixture
def demo_store(demo_template, tmp_path, monkeypatch):
    src, info = demo_template
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(dst))
    monkeypatch.delenv("HINDSIGHT_DB_URL", raising=False)
    from vision.dashboard import state

    state.get_store.clear()
    return Store(dst), info
