"""`hindsight users add`, `dogs add`, `upload`, `status`, `cleanup`: the operator's command line on both deployments."""

from __future__ import annotations

import io
import json

import pytest

from vision.cli import main


@pytest.fixture
def cli(deployment, monkeypatch, capsys):
    monkeypatch.setenv("HINDSIGHT_DATA_DIR", str(deployment.data_dir))

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_accounts_dogs_uploads_and_status(cli, walk_video):
    code, out, _ = cli(
        "users", "add", "Clinic@Example.org", "--role", "owner", "--name", "Clinic", stdin="long secret\n"
    )
    assert code == 0 and out.strip().isdigit()
    code, out, _ = cli("dogs", "add", "--owner", "clinic@example.org", "Rex")
    assert code == 0
    dog_id = out.strip()
    code, out, _ = cli("upload", str(walk_video[0]), "--owner", "clinic@example.org", "--dog", dog_id)
    assert code == 0
    clip_id = int(out.strip())
    code, out, err = cli("upload", str(walk_video[0]), "--owner", "clinic@example.org", "--dog", dog_id)
    assert code == 0 and int(out.strip()) == clip_id and "already there" in err
    code, out, _ = cli("status", str(clip_id), "--json")
    status = json.loads(out)
    assert code == 0 and status["status"] == "queued" and status["queue_position"] == 1
    assert {"progress", "attempts", "error", "eta_s"} <= set(status)


def test_the_operator_invites_a_vet_and_the_link_makes_the_account(cli, deployment):
    code, out, err = cli("users", "invite", "Dr.Who@Example.org")
    assert code == 0 and out.startswith("?invite=") and out.count("\n") == 1 and "one use" in err
    token = out.strip().removeprefix("?invite=")
    store = deployment.store()
    try:
        assert store.invitation_email(token) == "dr.who@example.org"
        store.accept_invitation(token, "Dr Who", "tardis blue box")
        vet = store.authenticate("dr.who@example.org", "tardis blue box")
        assert vet.role == "vet" and store.dogs_for(vet) == []
        assert store.invitation_email(token) is None  # one use
    finally:
        store.engine.dispose()
    code, out, err = cli("users", "invite", "not an address")
    assert code == 2 and out == "" and "e-mail address is needed" in err


@pytest.mark.parametrize(
    "argv,stdin,message",
    [
        (("users", "add", "a@b.org", "--role", "owner"), "short\n", "at least 8"),
        (("users", "add", "not-an-email", "--role", "vet"), "long enough\n", "e-mail"),
        (("dogs", "add", "--owner", "nobody@example.org", "Rex"), "", "no owner"),
        (("status", "999"), "", "no clip 999"),
        (("upload", "missing.mp4", "--owner", "nobody@example.org", "--dog", "1"), "", "no owner"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(cli, argv, stdin, message):
    code, out, err = cli(*argv, stdin=stdin)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_an_upload_that_is_not_a_video_is_refused(cli, tmp_path):
    cli("users", "add", "o@example.org", "--role", "owner", stdin="long secret\n")
    _, dog_id, _ = cli("dogs", "add", "--owner", "o@example.org", "Rex")
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    code, out, err = cli("upload", str(bad), "--owner", "o@example.org", "--dog", dog_id.strip())
    assert code == 2 and out == "" and err.startswith("error: ") and "video" in err
    code, out, err = cli("upload", str(bad), "--owner", "o@example.org", "--dog", "12345")
    assert code == 2 and "dog" in err


def test_cleanup_says_what_it_removed(cli, deployment, walk_video, blob_writer):
    import os
    import signal

    from vision.storage import Store

    store = Store(deployment.data_dir)
    kept = store.blobs.put_bytes(b"a stored report")
    code, _, _ = cli("users", "add", "o@example.org", "--role", "owner", stdin="long secret\n")
    code, out, _ = cli("dogs", "add", "--owner", "o@example.org", "Rex")
    code, out, _ = cli("upload", str(walk_video[0]), "--owner", "o@example.org", "--dog", out.strip())
    assert code == 0
    proc, _ = blob_writer(store.blobs.root)  # an upload killed midway
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    code, out, _ = cli("cleanup", "--json")  # everything is younger than the grace period: kept
    assert code == 0 and json.loads(out)["removed"] == 0
    code, out, _ = cli("cleanup", "--grace", "0")
    assert code == 0
    assert out.startswith("removed 1 partial upload(s), 0 stale scratch folder(s), 1 unreferenced file(s)")
    assert not store.blobs.exists(kept)  # no row named it
    code, out, _ = cli("cleanup", "--grace", "0", "--json")
    res = json.loads(out)
    assert code == 0 and res["removed"] == 0 and res["orphans_skipped"] is False
    code, _, err = cli("cleanup", "--grace", "-1")
    assert code == 2 and err.startswith("error: ")
