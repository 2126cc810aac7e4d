"""Two clips compared: the verdict in words, the table, the change chart and the side-by-side video.

The side-by-side aligns the clips on the left-hind strike times stored in each report
(``metrics.gait.events.left_hind.strikes_s``); a report made before they were stored asks for a
re-analysis instead of recomputing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from vision.dashboard.cards import block, comparison_rows, comparison_verdict
from vision.dashboard.state import LOG, damaged_line
from vision.errors import DamagedFileError
from vision.storage import Store
from vision.storage.models import Clip


def clip_name(clip: Clip) -> str:
    """How a clip is named in a verdict: its recording date with the upload time, or its upload when undated."""
    if clip.recorded_on_known is False and clip.uploaded_at is not None:
        return f"The clip uploaded {clip.uploaded_at:%d %b %Y %H:%M} (recording date unknown)"
    name = f"The clip of {clip.recorded_on:%d %b %Y}"
    return name + (f" (uploaded {clip.uploaded_at:%H:%M})" if clip.uploaded_at is not None else "")


def stored_strikes(report: dict[str, Any] | None) -> list[float] | None:
    """The report's left-hind strike times (s), or None when the report predates them."""
    strikes = block(report, "metrics", "gait", "events", "left_hind").get("strikes_s")
    return [float(t) for t in strikes] if isinstance(strikes, list) else None


def side_by_side(store: Store, before: Clip, after: Clip) -> Path | str:
    """The cached phase-aligned side-by-side video, or the reason it cannot be made."""
    from vision.sidebyside import render_side_by_side

    if not before.overlay_sha256 or not after.overlay_sha256:
        return "A clip has no annotated video: analyse it again to see the two side by side."
    strikes = [stored_strikes(store.report(c)) for c in (before, after)]
    if any(s is None for s in strikes):
        return "A clip was analysed by an older version: analyse it again to see the two side by side."
    cache = store.data_dir / "cache"
    cache.mkdir(exist_ok=True)
    out = cache / f"sbs_{before.overlay_sha256[:16]}_{after.overlay_sha256[:16]}.mp4"
    if out.exists():
        return out
    tmp = out.with_suffix(".part.mp4")
    render_side_by_side(
        store.blobs.verified_path(before.overlay_sha256, "overlay"),
        strikes[0] or [],
        store.blobs.verified_path(after.overlay_sha256, "overlay"),
        strikes[1] or [],
        tmp,
        labels=(f"{before.recorded_on:%d %b %Y}", f"{after.recorded_on:%d %b %Y}"),
    )
    tmp.replace(out)
    return out


def comparison_view(store: Store, before: Clip, after: Clip, comparison: dict[str, Any]) -> None:
    """Verdict, side-by-side (on request), table and change chart of two clips."""
    from vision.dashboard.figures import comparison_chart

    comparison_verdict(comparison, clip_name(before), clip_name(after))
    if st.toggle("Show both clips side by side, in step", value=False, key=f"sbs_{before.id}_{after.id}"):
        with st.spinner("Aligning the clips on their strides…"):
            try:
                video = side_by_side(store, before, after)
            except DamagedFileError as exc:  # one clip's stored file: named, the comparison stays readable
                LOG.warning("side-by-side of clips %s and %s: %s (%s)", before.id, after.id, exc, exc.reason)
                video = damaged_line(exc)
            except Exception:  # noqa: BLE001 - the comparison stays readable without the video
                LOG.exception("side-by-side of clips %s and %s failed", before.id, after.id)
                video = "The side-by-side video could not be made."
        if isinstance(video, Path):
            st.video(str(video))
        else:
            st.info(video)
    st.dataframe(comparison_rows(comparison), hide_index=True)
    if comparison.get("comparable", True):
        st.plotly_chart(comparison_chart(comparison))
