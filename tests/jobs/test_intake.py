from __future__ import annotations

import io

import numpy as np
import pytest

from vision.errors import HindsightInputError
from vision.jobs import store_upload
from vision.video import write_video


def _files(store):
    return sorted(p for p in store.blobs.root.rglob("*") if p.is_file())


def test_upload_is_content_addressed_and_name_never_a_path(store, people, walk_video):
    owner, _, dog = people
    hostile = "../../etc/passwd; rm -rf ~.mp4"
    with walk_video[0].open("rb") as fh:
        up = store_upload(store, owner, dog.id, fh, hostile)
    assert not up.already_there
    path = store.blobs.path(up.clip.video_sha256)
    assert path.read_bytes() == walk_video[0].read_bytes()
    assert up.clip.original_name == hostile and up.clip.status == "uploaded"
    assert all(".." not in p.name and "passwd" not in p.name for p in store.data_dir.rglob("*"))


def test_the_same_file_twice_is_one_clip(store, people, walk_video):
    owner, _, dog = people
    with walk_video[0].open("rb") as fh:
        first = store_upload(store, owner, dog.id, fh, "walk.mp4")
    with walk_video[0].open("rb") as fh:
        again = store_upload(store, owner, dog.id, fh, "renamed.mp4")
    assert again.already_there and again.clip.id == first.clip.id
    assert [c.id for c in store.clips_for_dog(owner, dog.id)] == [first.clip.id]


def test_another_owner_cannot_upload_to_a_dog(store, people, walk_video):
    _, other, dog = people
    with walk_video[0].open("rb") as fh, pytest.raises(PermissionError):
        store_upload(store, other, dog.id, fh, "walk.mp4")
    assert _files(store) == []


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"plain text, not a video", "not a readable video")])
def test_bad_uploads_leave_nothing_behind(store, people, content, msg):
    owner, _, dog = people
    with pytest.raises(HindsightInputError, match=msg):
        store_upload(store, owner, dog.id, io.BytesIO(content), "x.mp4")
    assert _files(store) == []
    assert store.clips_for_dog(owner, dog.id) == []


def test_oversized_and_too_short_uploads(store, people, tmp_path):
    owner, _, dog = people
    with pytest.raises(HindsightInputError, match="larger than"):
        store_upload(store, owner, dog.id, io.BytesIO(b"x" * (3 << 20)), "big.mp4", max_bytes=2 << 20)
    short = write_video(tmp_path / "s.mp4", [np.zeros((32, 32, 3), np.uint8)] * 5, 30)
    with short.open("rb") as fh, pytest.raises(HindsightInputError, match="too short"):
        store_upload(store, owner, dog.id, fh, "s.mp4")
    assert _files(store) == []


def test_a_full_disk_says_out_of_space_and_records_nothing(store, people, walk_video, monkeypatch):
    from vision.errors import OutOfSpaceError

    owner, _, dog = people

    def full(stream, max_bytes=None):
        raise OutOfSpaceError()

    monkeypatch.setattr(store.blobs, "put_stream", full)
    with walk_video[0].open("rb") as fh, pytest.raises(OutOfSpaceError, match="^the server is out of space$"):
        store_upload(store, owner, dog.id, fh, "walk.mp4")
    assert store.clips_for_dog(owner, dog.id) == []
    monkeypatch.undo()  # space freed: the same upload goes through
    with walk_video[0].open("rb") as fh:
        assert not store_upload(store, owner, dog.id, fh, "walk.mp4").already_there
