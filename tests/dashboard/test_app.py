"""Every page renders through Streamlit's AppTest, logged in as the demo owner or vet."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import ROOT

APP = str(ROOT / "app.py")


def _logged_in(at: AppTest, store, user) -> AppTest:
    """``at`` with an open login session for ``user`` (as after the login form)."""
    at.session_state["session_token"] = store.open_session(user, 3600)
    return at


def _app(store, email: str | None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if email:
        _logged_in(at, store, store.user_by_email(email))
    if page:
        at.session_state["start_page"] = page
    return at.run()


def test_login_page_and_wrong_password(demo_store):
    store, info = demo_store
    at = _app(store, None)
    assert not at.exception
    at.text_input(key="login_email").input(info["owner"])
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert any("Wrong e-mail or password" in e.value for e in at.error)
    at.text_input(key="login_password").input(info["owner_password"])
    at.button[0].click().run()
    assert store.session_user(at.session_state["session_token"]).id == store.user_by_email(info["owner"]).id
    assert not at.exception


@pytest.mark.parametrize("page", ["dogs", "upload", "clip", "compare", "review"])
def test_every_page_renders_for_the_owner(demo_store, page):
    store, info = demo_store
    at = _app(store, info["owner"], page)
    assert not at.exception, at.exception
    assert at.title


def test_dogs_page_shows_timeline_and_flag(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "dogs")
    assert any("Bella" in s.value for s in at.subheader)
    df = at.dataframe[0].value
    assert len(df) == 6 and "⚑" in set(df["flagged for vet"])


def test_owner_adds_a_dog(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "dogs")
    at.text_input[0].input("Rosie")
    at.text_input[1].input("Whippet")
    submit = next(b for b in at.button if b.label == "Add dog")
    submit.click().run()
    assert not at.exception
    owner = store.user_by_email(info["owner"])
    assert "Rosie" in [d.name for d in store.dogs_for(owner)]


def test_clip_page_shows_metric_cards(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "clip")
    labels = [m.label for m in at.metric]
    assert "Is one hind leg weaker?" in labels and "Wobble" in labels


def test_compare_page_flags_the_last_week(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "compare")
    assert any("Worse beyond" in e.value for e in at.error)
    assert len(at.dataframe[0].value) >= 7


def test_vet_sees_queue_saves_review_and_gets_pdf(demo_store):
    store, info = demo_store
    at = _app(store, info["vet"])  # vets start on the review page
    assert not at.exception
    assert any("Bella" in e.label for e in at.expander)
    assert at.get("download_button"), "the PDF button is offered"
    at.text_area[0].input("Recheck stifle; physio twice weekly.")
    at.radio[0].set_value("needs_visit")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception
    vet = store.user_by_email(info["vet"])
    saved = [r for r in store.review_queue(vet, include_done=True) if r.status != "pending"]
    assert len(saved) == 1 and saved[0].status == "needs_visit" and "physio" in saved[0].notes
    assert len(store.review_queue(vet)) == len(at.expander)  # the saved one left the pending queue


def test_vet_cannot_upload_and_owner_has_no_queue(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "review")
    assert any("for vets" in i.value for i in at.info)


def _replace_report(store, clip_id: int, change) -> None:
    """Store a changed copy of a clip's report (``change`` edits the dict in place) and point the clip at it."""
    import json

    from vision.storage.models import Clip

    with store.session() as s:
        clip = s.get(Clip, clip_id)
        report = json.loads(store.blobs.read_bytes(clip.report_sha256))
        change(report)
        clip.report_sha256 = store.blobs.put_bytes(json.dumps(report).encode())
        clip.usable = bool(report["quality"]["usable"])


def _owner_clips(store, info):
    return store.clips_for_dog(store.user_by_email(info["owner"]), info["dog_id"])


def _texts(at) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success"):
        out += [str(e.value) for e in at.get(kind)]
    return out


def test_comparing_with_an_unscored_clip_says_so_and_never_no_change(demo_store):
    store, info = demo_store
    clips = _owner_clips(store, info)

    def unscored(report):
        report["quality"].update(usable=False, reasons=["The dog is small in the frame (about 9% of its width)."])

    _replace_report(store, clips[-1].id, unscored)
    at = AppTest.from_file(APP, default_timeout=120)
    _logged_in(at, store, store.user_by_email(info["owner"]))
    at.session_state["start_page"] = "compare"
    at.query_params["before"], at.query_params["after"] = str(clips[0].id), str(clips[-1].id)
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(
        f"The clip of {clips[-1].recorded_on:%d %b %Y}" in w and "could not be scored: The dog is small" in w
        for w in warnings
    ), warnings
    assert not any("No worsening" in t or "no change" in t.lower() for t in _texts(at))
    table = at.dataframe[0].value
    gait = table[~table["measure"].str.startswith(("Thigh", "Hind/fore"))]  # muscle has its own gate
    assert set(gait["result"]) == {"not compared"}, set(gait["result"])


def test_the_clip_picker_keeps_its_choice_and_the_url_names_the_clip(demo_store):
    store, info = demo_store
    clips = _owner_clips(store, info)
    at = _app(store, info["owner"], "clip")
    picker = at.selectbox(key="pick_clip")
    assert picker.value == clips[-1].id  # the latest by default
    for chosen in (clips[1].id, clips[3].id, clips[0].id):  # every choice holds, not only the first
        picker.set_value(chosen).run()
        assert not at.exception
        at.run()  # a rerun (e.g. a fragment or a widget elsewhere) keeps it
        picker = at.selectbox(key="pick_clip")
        assert picker.value == chosen and at.query_params["clip"] in (str(chosen), [str(chosen)])
    labels = picker.options  # as shown: date, upload time and file name
    assert len(set(labels)) == len(labels), labels  # clips are told apart


def test_a_clip_url_opens_that_clip(demo_store):
    store, info = demo_store
    clips = _owner_clips(store, info)
    at = AppTest.from_file(APP, default_timeout=120)
    _logged_in(at, store, store.user_by_email(info["owner"]))
    at.session_state["start_page"] = "clip"
    at.query_params["clip"] = str(clips[2].id)
    at.run()
    assert at.selectbox(key="pick_clip").value == clips[2].id


def test_another_owners_clip_url_is_refused(demo_store):
    store, info = demo_store
    clips = _owner_clips(store, info)
    other = store.create_user("other@example.org", "Other", "owner", "password-123")
    store.create_dog(other, "Rex", "", None, None, "")
    at = AppTest.from_file(APP, default_timeout=120)
    _logged_in(at, store, other)
    at.session_state["start_page"] = "clip"
    at.query_params["clip"] = str(clips[2].id)
    at.run()
    assert not at.exception
    assert not at.metric and not at.get("video")  # Rex has no clips; Bella's is not shown


def test_a_page_error_is_one_line_and_logged(demo_store, monkeypatch, caplog):
    from vision.dashboard import cards
    from vision.dashboard.state import PAGE_ERROR

    def broken(report):
        raise RuntimeError("/secret/server/path exploded")

    monkeypatch.setattr(cards, "metric_cards", broken)
    monkeypatch.setattr("vision.dashboard.pages.clip.metric_cards", broken)
    store, info = demo_store
    at = _app(store, info["owner"], "clip")
    assert not at.exception
    assert [e.value for e in at.error] == [PAGE_ERROR]
    assert not any("/secret/server/path" in t for t in _texts(at))
    assert "exploded" in caplog.text


def test_sign_up_makes_owners_only_and_demo_logins_show_only_in_demo_mode(demo_store, monkeypatch):
    store, info = demo_store
    monkeypatch.delenv("HINDSIGHT_DEMO", raising=False)
    at = _app(store, None)
    assert not at.radio  # no "I am a vet" choice
    assert not any("demo-owner" in t for t in _texts(at))
    at.text_input(key="signup_email").input("new@example.org")
    at.text_input(key="signup_password").input("long enough pw")
    next(b for b in at.button if b.label == "Create account").click().run()
    assert store.user_by_email("new@example.org").role == "owner"
    monkeypatch.setenv("HINDSIGHT_DEMO", "1")
    assert any("demo-owner" in t for t in _texts(_app(store, None)))


def test_hostile_text_is_shown_as_plain_text(demo_store):
    store, info = demo_store
    owner = store.user_by_email(info["owner"])
    hostile = "[click me](https://evil.example) ![t](https://evil.example/t.png) <img src=x onerror=alert(1)>"
    dog = store.create_dog(owner, hostile, hostile, None, None, hostile)
    at = AppTest.from_file(APP, default_timeout=120)
    _logged_in(at, store, owner)
    at.session_state["start_page"] = "dogs"
    at.session_state["pick_dog"] = dog.id
    at.run()
    assert not at.exception
    import re

    live_link = re.compile(r"(?<!\\)\]\((?:https?:)")
    for element in [*at.markdown, *at.subheader, *at.caption, *at.title]:
        assert not live_link.search(str(element.value)), element.value
    assert any(hostile == t.value for t in at.text)  # breed-free notes shown verbatim as plain text


def test_logging_out_ends_the_session_even_if_the_cookie_stays(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "dogs")
    token = at.session_state["session_token"]
    next(b for b in at.button if b.label == "Log out").click().run()
    assert store.session_user(token) is None
    assert any(b.label == "Log in" for b in at.button)


def test_the_vet_is_told_the_review_was_saved(demo_store):
    store, info = demo_store
    at = _app(store, info["vet"])
    at.text_area[0].input("Recheck in two weeks.")
    next(b for b in at.button if b.label == "Save").click().run()
    assert any(s.value.startswith("Saved: Bella") for s in at.success)


def test_the_flag_is_explained_on_the_timeline(demo_store):
    store, info = demo_store
    at = _app(store, info["owner"], "dogs")
    assert any(c.value.startswith("⚑ = flagged for the vet") for c in at.caption)


def test_the_vet_gets_per_stride_detail_and_everyone_a_glossary(demo_store):
    store, info = demo_store
    vet = _app(store, info["vet"], "clip")
    assert not vet.exception
    labels = [e.label for e in vet.expander]
    assert "What the measures mean" in labels and any(label.startswith("Details for vets") for label in labels)
    assert any(t.value.startswith("Left hind paw strikes (s): ") for t in vet.text)
    assert any(t.value.startswith("Hind paw labels changed order ") for t in vet.text)
    owner = _app(store, info["owner"], "clip")
    assert not any(e.label.startswith("Details for vets") for e in owner.expander)


def _damage(store, sha: str) -> None:
    path = store.blobs.path(sha)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))


def test_a_damaged_overlay_is_one_line_and_the_rest_of_the_page_works(demo_store):
    store, info = demo_store
    latest = _owner_clips(store, info)[-1]
    _damage(store, latest.overlay_sha256)
    at = _app(store, info["owner"], "clip")
    assert not at.exception
    assert [w.value for w in at.warning] == ["The stored overlay video for this clip is damaged — re-analyse it."]
    assert not at.get("video") and "Is one hind leg weaker?" in [m.label for m in at.metric]
    for page in ("compare", "dogs"):  # the dog's other pages keep working
        other = _app(store, info["owner"], page)
        assert not other.exception and not other.warning


def test_a_damaged_report_is_one_line_on_the_clip_and_compare_pages(demo_store):
    store, info = demo_store
    latest = _owner_clips(store, info)[-1]
    _damage(store, latest.report_sha256)
    at = _app(store, info["owner"], "clip")
    assert not at.exception
    assert [e.value for e in at.error] == ["The stored report for this clip is damaged — re-analyse it."]
    assert any(b.label == "Re-analyse this clip" for b in at.button)
    at = _app(store, info["owner"], "compare")  # the latest clip is compared by default
    assert not at.exception
    assert "The stored report for this clip is damaged — re-analyse it." in [w.value for w in at.warning]
    assert at.get("plotly_chart")  # the weekly trend still shows, without the damaged week
    assert not _app(store, info["owner"], "dogs").exception


def test_the_owner_re_analyses_a_clip_and_its_old_result_stays_meanwhile(demo_store, monkeypatch):
    monkeypatch.setenv("HINDSIGHT_AUTOSTART_WORKER", "0")  # queued only: no worker runs in this test
    store, info = demo_store
    latest = _owner_clips(store, info)[-1]
    old = store.report(latest)
    at = _app(store, info["owner"], "clip")
    button = next(b for b in at.button if b.label == "Re-analyse this clip")
    button.click().run()
    assert not at.exception
    clip = store.get_clip(store.user_by_email(info["owner"]), latest.id)
    assert clip.status == "queued" and clip.report_sha256 == latest.report_sha256
    assert store.report(clip) == old
    assert any(s.value.startswith("Re-analysis queued.") for s in at.success)
    assert "Is one hind leg weaker?" in [m.label for m in at.metric]  # the previous result is still shown
    assert not any(b.label == "Re-analyse this clip" for b in at.button)  # not twice
    vet = _app(store, info["vet"], "clip")
    assert not vet.exception and not any(b.label == "Re-analyse this clip" for b in vet.button)


def test_the_package_script_serves_the_same_app(demo_store):
    store, info = demo_store
    from vision.dashboard.app import SCRIPT

    at = AppTest.from_file(str(SCRIPT), default_timeout=120)
    _logged_in(at, store, store.user_by_email(info["owner"]))
    at.run()
    assert not at.exception and at.title


# --- accounts and security ---------------------------------------------------------------------------------


def _click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_sign_up_answers_the_same_for_a_free_and_a_taken_e_mail_and_does_not_log_in(demo_store):
    from vision.dashboard.pages.login import SIGNED_UP

    store, info = demo_store
    vet_before = store.user_by_email(info["vet"])
    answers = []
    for email in ("brand.new@example.org", info["vet"]):
        at = _app(store, None)
        at.text_input(key="signup_email").input(email)
        at.text_input(key="signup_password").input("a long enough password")
        _click(at, "Create account")
        assert not at.exception and not at.error
        assert "session_token" not in at.session_state  # not logged in: success would tell the e-mail was free
        answers.append([s.value for s in at.success])
    assert answers == [[SIGNED_UP], [SIGNED_UP]]
    assert store.user_by_email("brand.new@example.org").role == "owner"
    vet_after = store.user_by_email(info["vet"])
    assert (vet_after.role, vet_after.password_hash) == ("vet", vet_before.password_hash)


def test_the_login_is_refused_after_five_wrong_passwords(demo_store):
    store, info = demo_store
    at = _app(store, None)
    at.text_input(key="login_email").input(info["owner"])
    errors = []
    for attempt in range(6):  # five wrong passwords, then the right one
        password = info["owner_password"] if attempt == 5 else f"wrong password {attempt}"
        at.text_input(key="login_password").input(password)
        _click(at, "Log in")
        errors.append([e.value for e in at.error])
    assert errors[:5] == [["Wrong e-mail or password."]] * 5
    assert errors[5] == ["Too many failed attempts for this account; try again in 15 minutes."]
    assert "session_token" not in at.session_state
    assert store.authenticate(info["vet"], info["vet_password"]) is not None  # other accounts still log in


def test_an_invitation_link_makes_the_vet_account_and_shows_the_dog(demo_store):
    from vision.dashboard.pages.login import INVITE_USED
    from vision.storage.accounts import INVALID_INVITATION

    store, info = demo_store
    owner = store.user_by_email(info["owner"])
    token = store.share_dog(owner, info["dog_id"], "new.vet@example.org")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["invite"] = token
    at.run()
    assert not at.exception
    assert any(t.value == "For new.vet@example.org" for t in at.text)
    at.text_input(key="invite_name").input("Dr New")
    at.text_input(key="invite_password").input("short")
    _click(at, "Create my vet account")
    assert [e.value for e in at.error] == ["a password needs at least 8 and at most 256 characters"]
    at.text_input(key="invite_password").input("new vet password")
    _click(at, "Create my vet account")
    assert not at.exception and [s.value for s in at.success] == [INVITE_USED]
    vet = store.user_by_email("new.vet@example.org")
    assert vet.role == "vet" and [d.id for d in store.dogs_for(vet)] == [info["dog_id"]]
    at.text_input(key="login_email").input("new.vet@example.org")
    at.text_input(key="login_password").input("new vet password")
    _click(at, "Log in")  # the new vet logs in from the same page and lands on the queue
    assert not at.exception and store.session_user(at.session_state["session_token"]).id == vet.id
    assert "invite" not in at.query_params
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["invite"] = token
    again.run()
    assert [e.value for e in again.error] == [INVALID_INVITATION]  # one use
    assert not again.get("text_input") or "invite_name" not in [t.key for t in again.text_input]


def test_the_owner_shares_by_invitation_and_stops_sharing(demo_store):
    from vision.dashboard.pages.dogs import SHARE_DONE

    store, info = demo_store
    vet = store.user_by_email(info["vet"])
    assert store.review_queue(vet)  # the demo vet has Bella's flagged clip to review
    shown = []
    for email in (info["vet"], "unknown.vet@example.org"):  # a known vet and an unknown e-mail: the same answer
        at = _app(store, info["owner"], "dogs")
        at.text_input(key="share_email").input(email)
        _click(at, "Share")
        assert not at.exception and not at.error
        shown.append([s.value for s in at.success])
        assert "?invite=" in at.code[0].value
    assert shown == [[SHARE_DONE], [SHARE_DONE]]
    rows = [t.value for t in at.text if " — " in t.value]
    assert any(r.startswith("unknown.vet@example.org — invited") for r in rows), rows
    at = _app(store, info["owner"], "dogs")
    at.button(key=f"unshare_{info['dog_id']}_{info['vet']}").click().run()
    assert not at.exception
    assert store.dogs_for(vet) == [] and store.review_queue(vet, include_done=True) == []
    assert not any(t.value.startswith(info["vet"]) for t in at.text)
    vet_view = _app(store, info["vet"])
    assert not vet_view.exception and not any("Bella" in e.label for e in vet_view.expander)


def test_the_served_config_hides_the_developer_menu_and_listens_locally():
    """What ``streamlit run`` in the project folder reads (the CLI passes the same settings to ``demo --serve``)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy button or developer menu
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "localhost"
