"""Demo data: an owner, a vet and a dog with six weekly clips the project renders itself.

The clips are synthetic walking-dog videos with a slowly worsening left-hind
limp and a slowly thinning left thigh. They are analysed from the keypoints the renderer drew (marked "rendered
keypoints" in the dashboard), so the demo works without depending on the
keypoint model recognising a cartoon dog.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from vision.io import save_poses
from vision.jobs import run_now, store_upload
from vision.storage import Store
from vision.synthetic import generate, render_video

DEMO_OWNER = ("owner@demo.hindsight", "Olivia Owner", "demo-owner")
DEMO_VET = ("vet@demo.hindsight", "Dr Victor Vet", "demo-vet-1")
#: Left-hind limp severity per week: steady, then worse in the last week.
DEMO_SEVERITY = (0.05, 0.05, 0.1, 0.1, 0.15, 0.5)
#: Width of the left thigh (body lengths) per week: muscle loss on the lame side in the last week.
DEMO_THIGH = (0.17, 0.17, 0.17, 0.17, 0.17, 0.15)


def ensure_demo(
    store: Store, *, weeks: int = 6, today: dt.date | None = None, size: tuple[int, int] = (640, 360), progress=None
) -> dict[str, object]:
    """Create the demo accounts, dog and analysed clips unless they exist; return the logins."""
    owner = store.user_by_email(DEMO_OWNER[0]) or store.create_user(
        DEMO_OWNER[0], DEMO_OWNER[1], "owner", DEMO_OWNER[2]
    )
    vet = store.user_by_email(DEMO_VET[0]) or store.create_user(DEMO_VET[0], DEMO_VET[1], "vet", DEMO_VET[2])
    dogs = store.dogs_for(owner)
    dog = next((d for d in dogs if d.name == "Bella"), None)
    if dog is None:
        dog = store.create_dog(
            owner, "Bella", "Labrador retriever", dt.date(2015, 4, 2), 31.5, "Demo dog: left cruciate surgery in 2024."
        )
        store.share_dog(owner, dog.id, vet.email)
    existing = store.clips_for_dog(owner, dog.id)
    today = today or dt.date.today()
    with tempfile.TemporaryDirectory() as tmp:
        for week in range(len(existing), weeks):
            severity = DEMO_SEVERITY[week % len(DEMO_SEVERITY)]
            clip = generate(
                limp_side="left",
                limp_severity=severity,
                seed=100 + week,
                duration_s=10,
                frame_size=size,
                body_length_px=0.3 * size[0],
                jitter_px=0.8 * size[0] / 640,
                stride_cv=0.04,
            )
            video = Path(tmp) / f"week{week}.mp4"
            thigh = DEMO_THIGH[week % len(DEMO_THIGH)]
            render_video(clip, str(video), thigh_width_bl=(thigh, 0.17), fore_width_bl=0.07, body_depth_bl=0.14)
            recorded = today - dt.timedelta(days=7 * (weeks - 1 - week))
            with video.open("rb") as fh:
                row = store_upload(
                    store, owner, dog.id, fh, f"demo week {week + 1}.mp4", recorded, pose_source="rendered"
                ).clip
            tracks_sha = store.blobs.put_file(save_poses(clip.tracks, Path(tmp) / f"week{week}.nc"))
            with store.session() as s:
                from vision.storage.models import Clip

                c = s.get(Clip, row.id)
                assert c is not None
                c.tracks_sha256 = tracks_sha
            run_now(store, row.id)
            if progress:
                progress((week + 1) / weeks, f"demo clip {week + 1} of {weeks}")
    return {
        "owner": DEMO_OWNER[0],
        "owner_password": DEMO_OWNER[2],
        "vet": DEMO_VET[0],
        "vet_password": DEMO_VET[2],
        "dog_id": dog.id,
    }
