import json

import numpy as np
import pytest

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.tracks import from_arrays, log_step, read_log, usable_fraction, validate


def _arrays(n=10):
    pos = np.random.default_rng(0).normal(100, 5, (n, len(CANONICAL_KEYPOINTS), 2))
    conf = np.full((n, len(CANONICAL_KEYPOINTS)), 0.9)
    return pos, conf, np.arange(n) / 30


def test_layout_is_movement_compatible():
    pos, conf, t = _arrays()
    ds = from_arrays(pos, conf, t, fps=30)
    assert ds["position"].dims == ("time", "space", "keypoint", "individual")
    assert ds["confidence"].dims == ("time", "keypoint", "individual")
    assert ds["position"].dtype == np.float32
    assert list(ds["space"].values) == ["x", "y"]
    assert ds.attrs["fps"] == 30 and ds.attrs["ds_type"] == "poses"
    validate(ds)


def test_log_is_appended_and_input_untouched():
    pos, conf, t = _arrays()
    ds = from_arrays(pos, conf, t)
    before = ds.attrs["log"]
    out = log_step(ds, "something", threshold=np.float32(0.5), arr=np.array([1, 2]))
    assert ds.attrs["log"] == before
    entries = read_log(out)
    assert entries[-1]["operation"] == "something"
    assert entries[-1]["parameters"] == {"threshold": 0.5, "arr": [1, 2]}
    json.dumps(entries)


def test_rejects_bad_shapes_and_times():
    pos, conf, t = _arrays()
    with pytest.raises(ValueError):
        from_arrays(pos[:, :, :1], conf, t)
    with pytest.raises(ValueError, match="increasing"):
        from_arrays(pos, conf, t[::-1])
    with pytest.raises(ValueError):
        from_arrays(pos, conf[:, :3], t)


def test_usable_fraction_counts_nan():
    pos, conf, t = _arrays(10)
    pos[:5, 0] = np.nan
    frac = usable_fraction(from_arrays(pos, conf, t))
    assert frac["nose"] == 0.5 and frac["withers"] == 1.0
