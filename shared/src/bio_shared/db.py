"""SQLAlchemy 2 engines and sessions, and Alembic migrations per package.

Every package owns its tables (its own ``DeclarativeBase``) and its own Alembic version table, so
packages migrate independently against one database (SQLite in the embedded mode, PostgreSQL in the
distributed one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, DateTime, Dialect, Engine, MetaData, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from alembic.config import Config

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the in-process job threads
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700 (whatever the umask); existing folders are
    left as they are."""
    missing = []
    p = Path(path)
    while not p.exists():
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, 0o700)
    return Path(path)


def private_sqlite_file(path: Path) -> None:
    """The database holds biometric data: the file is the platform user's alone (0600). SQLite gives
    its -wal and -shm files the database file's mode."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except PermissionError:  # a file of another user: SQLite will say what it can or cannot do
        pass
    finally:
        os.close(fd)


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; create SQLite's folder and file (private) on the way."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:" \
            and not u.database.startswith("file:"):
        private_sqlite_file(Path(u.database))
    return u.render_as_string(hide_password=False)


def get_engine(url: str) -> Engine:
    """One engine per URL per process (the embedded mode shares it between all packages)."""
    url = normalise_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                       connect_args={"connect_timeout": 5})
            _engines[url] = engine
        return engine


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """Rows matched by an executed UPDATE or DELETE (``Session.execute`` returns a ``CursorResult``
    for those, though it is typed as a plain ``Result``)."""
    return cast("CursorResult[*tuple[Any, ...]]", result).rowcount


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_database(url: str) -> None:
    from sqlalchemy import text

    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))


def migrate(package: str, url: str, revision: str = "head") -> None:
    """Upgrade one package's schema. ``package`` holds ``migrations/`` (env.py + versions/)."""
    from alembic import command

    command.upgrade(alembic_config(package, url), revision)


def downgrade(package: str, url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(package, url), revision)


def alembic_config(package: str, url: str) -> Config:
    from alembic.config import Config

    script_dir = resources.files(package) / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_dir))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def run_migrations(target_metadata: MetaData, version_table: str) -> None:
    """Body of every package's ``migrations/env.py``."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("the Alembic configuration has no sqlalchemy.url")
    opts: dict[str, Any] = dict(
        target_metadata=target_metadata,
        version_table=version_table,
        render_as_batch=url.startswith("sqlite"),  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, **opts)
        with context.begin_transaction():
            context.run_migrations()
