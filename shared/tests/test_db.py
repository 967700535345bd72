"""bio_shared.db: URLs, engines, sessions, the UTC datetime type, and per-package Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

from bio_shared.db import (
    UTCDateTime,
    alembic_config,
    check_database,
    dispose_engines,
    downgrade,
    get_engine,
    migrate,
    normalise_url,
    session_factory,
    session_scope,
    utcnow,
)
from bio_shared.jobs import JobMixin


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{(tmp_path / 'db' / 'bio.db').as_posix()}"
    dispose_engines()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'any.db').as_posix()}"
        dispose_engines()
    else:
        yield request.getfixturevalue("pg_url")


# -- URLs and engines --------------------------------------------------------------------------------------


def test_normalise_url_postgres_driver() -> None:
    assert normalise_url("postgresql://u:pw@h:5432/db") == "postgresql+psycopg://u:pw@h:5432/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    # Passwords survive, special characters included (rendered URL-encoded, never hidden as ***).
    assert normalise_url("postgresql://u:p%40ss%2Fw@h/db") == "postgresql+psycopg://u:p%40ss%2Fw@h/db"


def test_normalise_url_creates_sqlite_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "er"
    url = normalise_url(f"sqlite:///{folder.as_posix()}/x.db")
    assert folder.is_dir()
    assert url == f"sqlite:///{folder.as_posix()}/x.db"
    assert make_url(normalise_url("sqlite:///:memory:")).database == ":memory:"
    assert normalise_url("sqlite://") == "sqlite://"


def test_sqlite_path_with_url_special_characters(tmp_path: Path) -> None:
    folder = tmp_path / "odd 100% @name"
    url = f"sqlite:///{folder.as_posix()}/bio.db"
    assert make_url(normalise_url(url)).database == f"{folder.as_posix()}/bio.db"
    try:
        check_database(url)
        migrate("bio_fingerprint", url)  # the URL also survives Alembic's %-interpolation
        assert (folder / "bio.db").is_file()
        assert "fingerprint_jobs" in inspect(get_engine(url)).get_table_names()
    finally:
        dispose_engines()


def test_engine_cached_per_normalised_url(sqlite_url: str) -> None:
    a = get_engine(sqlite_url)
    assert get_engine(sqlite_url) is a
    dispose_engines()
    b = get_engine(sqlite_url)
    assert b is not a


def test_postgres_spellings_share_an_engine() -> None:
    try:
        a = get_engine("postgresql://nobody@127.0.0.1:1/none")
        assert get_engine("postgresql+psycopg://nobody@127.0.0.1:1/none") is a
        assert get_engine("postgres://nobody@127.0.0.1:1/none") is a
        assert a.dialect.driver == "psycopg"
    finally:
        dispose_engines()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_check_database(any_url: str) -> None:
    check_database(any_url)


def test_check_database_unreachable() -> None:
    try:
        with pytest.raises(OperationalError):
            check_database("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    finally:
        dispose_engines()


# -- sessions ----------------------------------------------------------------------------------------------


class SBase(DeclarativeBase):
    pass


class Thing(SBase):
    __tablename__ = "shared_test_things"
    id = Column(Integer, primary_key=True)
    name = Column(String(20), nullable=False)
    at = Column(UTCDateTime, nullable=True)


def test_session_scope_commits_and_rolls_back(any_url: str) -> None:
    SBase.metadata.create_all(get_engine(any_url))
    factory = session_factory(any_url)
    with session_scope(factory) as s:
        s.add(Thing(id=1, name="kept"))
    with pytest.raises(RuntimeError):
        with session_scope(factory) as s:
            s.add(Thing(id=2, name="dropped"))
            s.flush()
            raise RuntimeError("abort")
    with pytest.raises(KeyboardInterrupt):  # BaseException rolls back too
        with session_scope(factory) as s:
            s.add(Thing(id=3, name="dropped"))
            s.flush()
            raise KeyboardInterrupt
    with factory() as s:
        assert [t.name for t in s.scalars(select(Thing).order_by(Thing.id))] == ["kept"]


def test_objects_usable_after_commit(any_url: str) -> None:
    SBase.metadata.create_all(get_engine(any_url))
    factory = session_factory(any_url)
    with session_scope(factory) as s:
        thing = Thing(id=7, name="seven")
        s.add(thing)
    assert thing.name == "seven"  # expire_on_commit=False: no reload from a closed session


# -- UTCDateTime -------------------------------------------------------------------------------------------


def test_utcnow_is_aware() -> None:
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_utc_datetime_aware_round_trip(any_url: str) -> None:
    SBase.metadata.create_all(get_engine(any_url))
    factory = session_factory(any_url)
    aware = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    naive = datetime(2024, 5, 6, 7, 8, 9)
    with session_scope(factory) as s:
        s.add_all([Thing(id=1, name="aware", at=aware), Thing(id=2, name="naive", at=naive),
                   Thing(id=3, name="none", at=None)])
    with factory() as s:
        got = {t.name: t.at for t in s.scalars(select(Thing))}
    assert got["aware"] == aware
    assert got["aware"].tzinfo is not None and got["aware"].utcoffset() == timedelta(0)
    assert got["naive"] == naive.replace(tzinfo=UTC)  # naive values are taken as UTC
    assert got["naive"].tzinfo is not None
    assert got["none"] is None


def test_utc_datetime_comparisons_in_sql(any_url: str) -> None:
    SBase.metadata.create_all(get_engine(any_url))
    factory = session_factory(any_url)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with session_scope(factory) as s:
        s.add_all([Thing(id=i, name=str(i), at=base + timedelta(hours=i)) for i in range(5)])
    with factory() as s:
        ids = list(s.scalars(select(Thing.id).where(Thing.at < base + timedelta(hours=2, minutes=30))
                             .order_by(Thing.id)))
    assert ids == [0, 1, 2]


def test_utc_datetime_on_sqlite_returns_aware(sqlite_url: str) -> None:
    md = MetaData()
    t = Table("ts", md, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = get_engine(sqlite_url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert().values(id=1, at=datetime(2023, 12, 31, 23, 59, 59)))
    with engine.connect() as conn:
        value = conn.execute(select(t.c.at)).scalar_one()
    assert value == datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert value.tzinfo is not None
def test_utc_datetime_non_utc_offset_on_sqlite(sqlite_url: str) -> None:
    md = MetaData()
    t = Table("ts2", md, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = get_engine(sqlite_url)
    md.create_all(engine)
    paris_summer = timezone(timedelta(hours=2))
    instant = datetime(2024, 7, 1, 12, 0, tzinfo=paris_summer)  # 10:00 UTC
    with engine.begin() as conn:
        conn.execute(t.insert().values(id=1, at=instant))
    with engine.connect() as conn:
        value = conn.execute(select(t.c.at)).scalar_one()
    assert value == instant, f"stored {instant.isoformat()}, read back {value.isoformat()}"


@pytest.mark.integration
def test_utc_datetime_non_utc_offset_on_postgres(pg_url: str) -> None:
    md = MetaData()
    t = Table("ts3", md, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = get_engine(pg_url)
    md.create_all(engine)
    instant = datetime(2024, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(t.insert().values(id=1, at=instant))
    with engine.connect() as conn:
        assert conn.execute(select(t.c.at)).scalar_one() == instant


# -- migrations --------------------------------------------------------------------------------------------


class FpBase(DeclarativeBase):
    pass


class FingerprintJobShape(JobMixin, FpBase):
    """What JobMixin says the table looks like; the migration must produce exactly this."""

    __tablename__ = "fingerprint_jobs"


def test_alembic_config(tmp_path: Path) -> None:
    cfg = alembic_config("bio_fingerprint", "postgresql://u:p%40ss@h/db")
    assert cfg.get_main_option("sqlalchemy.url") == "postgresql+psycopg://u:p%40ss@h/db"  # %% unescaped by Alembic
    location = Path(cfg.get_main_option("script_location"))
    assert location.name == "migrations" and (location / "env.py").is_file()


# The fingerprint package is the sample: its first revision creates exactly the v1 jobs table (later
# revisions add the service's own tables, which are not bio_shared's concern).
JOBS_REVISION = "fp0001"


def test_migrate_fingerprint(any_url: str) -> None:
    migrate("bio_fingerprint", any_url, JOBS_REVISION)
    engine = get_engine(any_url)
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    assert {"fingerprint_jobs", "alembic_version_fingerprint"} <= tables
    assert "alembic_version" not in tables  # each package keeps its own version table
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version_fingerprint")).scalars().all() == ["fp0001"]
    columns = {c["name"] for c in insp.get_columns("fingerprint_jobs")}
    assert columns == {c.name for c in FingerprintJobShape.__table__.columns}
    indexes = {i["name"] for i in insp.get_indexes("fingerprint_jobs")}
    assert {"ix_fingerprint_jobs_owner_id", "ix_fingerprint_jobs_status",
            "ix_fingerprint_jobs_lease_expires_at"} <= indexes


def test_migrate_is_idempotent_and_reversible(any_url: str) -> None:
    migrate("bio_fingerprint", any_url)
    migrate("bio_fingerprint", any_url)  # already at head: nothing to do, no error
    engine = get_engine(any_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO fingerprint_jobs (id, owner_id, kind, status, params, created_at) "
                          "VALUES ('j1', 'a', 'k', 'pending', '{}', CURRENT_TIMESTAMP)"))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT progress, attempts FROM fingerprint_jobs WHERE id = 'j1'")).one()
    assert (row.progress, row.attempts) == (0, 0)  # server defaults of the migration
    downgrade("bio_fingerprint", any_url, "base")
    tables = set(inspect(get_engine(any_url)).get_table_names())
    assert "fingerprint_jobs" not in tables
    migrate("bio_fingerprint", any_url)
    assert "fingerprint_jobs" in set(inspect(get_engine(any_url)).get_table_names())


def test_migration_matches_job_mixin(any_url: str) -> None:
    migrate("bio_fingerprint", any_url, JOBS_REVISION)
    with get_engine(any_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                      "version_table": "alembic_version_fingerprint"})
        diffs = compare_metadata(ctx, FpBase.metadata)
    assert diffs == []


def test_migrated_table_works_with_job_queue(any_url: str, var_dir: Path) -> None:
    from bio_shared.identity import Identity
    from bio_shared.jobs import JobQueue
    from bio_shared.settings import CommonSettings

    migrate("bio_fingerprint", any_url)
    settings = CommonSettings(var_dir=var_dir, database_url=any_url, internal_secret="s" * 40)
    q = JobQueue("fingerprint", FingerprintJobShape, session_factory(any_url), settings, "/api/v1/fingerprint/jobs")

    class Sink:
        def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
            pass

    q.dispatcher = Sink()
    q.handler("k")(lambda ctx: {"ok": True})
    job = q.submit(Identity("a", "user"), "k", {"p": 1})
    assert q.execute(job.id).state == "ran"
    assert q.get(job.id, Identity("a", "user")).result == {"ok": True}
