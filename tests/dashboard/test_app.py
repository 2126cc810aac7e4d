"""Every page renders through Streamlit's AppTest, logged in as the demo owner or vet."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import ROOT

APP = str(ROOT / "app.py")


def _app(store, email: str | None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if email:
        at.session_state["user_id"] = store.user_by_email(email).id
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
    assert at.session_state["user_id"] == store.user_by_email(info["owner"]).id
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
