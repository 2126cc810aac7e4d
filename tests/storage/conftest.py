"""Fixtures of the storage tests: a fresh store on SQLite and on PostgreSQL (skipped without one), and its people."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text

from vision.storage import Store

PG_ENV = "HINDSIGHT_TEST_PG_URL"


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL of ``$HINDSIGHT_TEST_PG_URL`` whose tables live in a new, private schema (dropped after)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (.ci/run starts a PostgreSQL server and sets it)")
    schema = f"hs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A fresh store on SQLite, then on a real PostgreSQL server in a schema of its own (skipped without one)."""
    if request.param == "sqlite":
        s = Store(tmp_path / "data")
        yield s
        s.engine.dispose()
        return
    with pg_schema_url() as url:
        s = Store(tmp_path / "data", db_url=url)
        try:
            yield s
        finally:
            s.engine.dispose()


@pytest.fixture
def people(store):
    owner = store.create_user("Owner@Example.org", "Olga", "owner", "correct horse")
    other = store.create_user("other@example.org", "Otto", "owner", "battery staple")
    vet = store.create_user("vet@example.org", "Dr V", "vet", "stethoscope")
    dog = store.create_dog(owner, "Rex", "Collie")
    return owner, other, vet, dog
