from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples on every run and in CI (no flaky reds).
settings.register_profile(
    "hindsight", derandomize=True, deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("hindsight")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FOREVER_DOG = SHARED / "data" / "videos" / "forever_dog"
ANIMALPOSE = SHARED / "data" / "animalpose"


def need_shared(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared holds third-party data, absent on a fresh clone)")


@pytest.fixture
def forever_dog() -> Path:
    need_shared(FOREVER_DOG / "dog.mp4")
    return FOREVER_DOG
