import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vision.gait.stats import circular_mean_phase, estimate, evidence_strength, symmetry_index


def test_symmetry_index_definition():
    assert symmetry_index(np.array([110.0]), np.array([90.0]))[0] == pytest.approx(20.0)
    assert symmetry_index(np.array([1.0]), np.array([1.0]))[0] == 0


def test_estimate_interval_and_evidence():
    e = estimate([10, 11, 9, 10.5, 9.5])
    assert e.value == pytest.approx(10)
    assert e.ci95[0] < 10 < e.ci95[1]
    assert e.evidence == "strong"
    assert estimate([1, -1]).evidence == "insufficient"


def test_evidence_thresholds_follow_equinosis():
    assert evidence_strength(10, 4.9, 10) == "strong"
    assert evidence_strength(10, 10, 10) == "moderate"
    assert evidence_strength(10, 13, 10) == "weak"


@given(st.floats(0, 1, exclude_max=True), st.floats(0.0, 0.05))
def test_circular_mean_wraps(center, spread):
    phases = (center + spread * np.array([-1, 0, 1])) % 1.0
    mean, r = circular_mean_phase(phases)
    assert min(abs(mean - center), 1 - abs(mean - center)) < 1e-6
    assert r > 0.9
