"""Database plumbing the services share: DATABASE_URL parsing, per-dialect engine options,
session settings, race-safe table creation (and upgrade) at start-up, the read path, and the
health ping.

SQLite is tuned for several gunicorn workers and several instances sharing one file: WAL lets
readers proceed while one writer commits, and the busy timeout makes writers queue for the lock
instead of failing with "database is locked".
"""

import logging
import re
import time
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, Select, Table, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CreateTable

from chassis.env import ConfigError, env_str
from chassis.responses import api_error, unexpected_error_response

__all__ = [
    "MAX_ID",
    "SESSION_OPTIONS",
    "Timestamps",
    "add_sqlite_autoincrement",
    "as_utc",
    "create_tables",
    "database_url_from_env",
    "engine_options",
    "init_database",
    "install_session_settings",
    "iso_utc",
    "ping",
    "read_by_id",
    "read_row",
    "reading",
    "utcnow",
]

log = logging.getLogger("storage")

SQLITE_BUSY_TIMEOUT_S = 30
# INTEGER is 32-bit on PostgreSQL: larger ids cannot exist, so asking for one is a 404.
MAX_ID = 2**31 - 1
POSTGRES_CONNECT_TIMEOUT_S = 3
# A transaction of ours never waits on anything but the database (the user check runs
# outside one), so a session idle inside one for this long belongs to a frozen or stuck
# process: PostgreSQL ends it and frees the rows it wrote. An Idempotency-Key among them
# would otherwise hold up every retry of that request until the process came back (README:
# When an instance freezes). The default is below GATEWAY_READ_TIMEOUT's (10 s), so the
# gateway's retry on another instance finds the key free within its deadline
# (DATABASE_IDLE_TRANSACTION_TIMEOUT sets it; 0: never).
IDLE_TRANSACTION_TIMEOUT_S = 5.0
# Every write path commits and then answers with what it wrote: expiring the objects on
# commit would make that answer a second SELECT of the row just written. Defaults are
# computed in Python (chassis.storage.utcnow), so the objects already hold what was stored.
SESSION_OPTIONS = {"expire_on_commit": False}
READS = "storage.reads"  # app.extensions key of the Reads of reading() and read_row()
CURSOR = "storage.cursor"  # a pooled connection's info key of its kept cursor


def database_url_from_env(service: str, environ=None) -> str:
    """DATABASE_URL, or a SQLite file `<DATA_DIR>/<service>.db` (DATA_DIR defaults to ./var).

    A bare `postgresql://` URL is pointed at psycopg 3, the driver this project installs.
    Only read here (reading the configuration has no side effect); init_database creates
    the directory of a SQLite file.
    """
    data_dir = Path(env_str("DATA_DIR", "var", environ)).resolve()
    raw = env_str("DATABASE_URL", f"sqlite:///{data_dir / service}.db", environ)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: not a database URL: {raw!r}") from None
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"DATABASE_URL: unsupported database {url.drivername!r}; use sqlite or postgresql"
        )
    return url.render_as_string(hide_password=False)


def init_database(
    app: Flask,
    db: SQLAlchemy,
    url: str,
    idle_transaction_timeout: float = IDLE_TRANSACTION_TIMEOUT_S,
) -> None:
    """Bind `db` to `app`, create missing tables, and answer database outages with 503 JSON.
    `idle_transaction_timeout`: see install_session_settings."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        # so that the first start needs no manual step
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    url = named_for(url, app.config.get("INSTANCE_ID"))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url)
    db.init_app(app)
    with app.app_context():
        install_session_settings(db.engine, idle_transaction_timeout)
        create_tables(db)
        app.extensions[READS] = Reads(reads_engine(db.engine))
    app.register_error_handler(DBAPIError, _database_error)


def _database_error(exc: DBAPIError):
    """503 for what a retry may cure: the database unreachable (OperationalError), or our
    session ended under us (PostgreSQL ending a session idle inside a transaction raises
    an InternalError, and costs the connection). Anything else is a bug: 500."""
    if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
        return unexpected_error_response(exc)
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return api_error(
        503,
        "database_unavailable",
        "the database is unavailable; try again",
        None,
        {"Retry-After": "1"},
    )


def named_for(url: str, instance_id: str | None) -> str:
    """On PostgreSQL, `url` with application_name set to the instance's id (unless the URL
    names one): pg_stat_activity then says which instance holds a session, a lock or a
    transaction open."""
    parsed = make_url(url)
    postgres = parsed.drivername.startswith("postgresql")
    if not instance_id or not postgres or "application_name" in parsed.query:
        return url
    named = parsed.update_query_dict({"application_name": instance_id})
    return named.render_as_string(hide_password=False)


def engine_options(url: str | URL) -> dict:
    if make_url(url).drivername.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    # No pool_pre_ping: it is a round trip before every checkout, a second one for a read
    # that is one SELECT. After a PostgreSQL restart the first statement on an old pooled
    # connection fails instead (503 with Retry-After, see init_database), and SQLAlchemy's
    # disconnect detection then drops every connection opened before it.
    return {
        "connect_args": {
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            **postgres_client_encoding(),
        }
    }


def postgres_client_encoding() -> dict:
    """Ask for UTF8 whatever the database's encoding.

    A database created under the C locale is SQL_ASCII: unasked, the session's client encoding
    is SQL_ASCII too, psycopg then returns text as bytes, and SQLAlchemy fails at boot
    (`cannot use a string pattern on a bytes-like object`, in its server version check). With
    UTF8 asked for, a SQL_ASCII server stores and returns the UTF-8 bytes we send, unconverted;
    a server in any other encoding converts them, as it would for any client.
    """
    return {"client_encoding": "UTF8"}


def install_session_settings(engine: Engine, idle_transaction_timeout: float) -> None:
    """Settings each new connection of `engine` takes before its first query.

    SQLite: WAL, and synchronous NORMAL, durable against a killed process in WAL mode (only
    an OS crash can lose the last commits, and never corrupts the file). PostgreSQL: the
    server ends a session idle inside a transaction for `idle_transaction_timeout` seconds
    (see IDLE_TRANSACTION_TIMEOUT_S; 0: never); a SET, not a startup option, as poolers
    such as PgBouncer refuse unknown startup options."""
    # Milliseconds, as PostgreSQL counts: 0 is off, so a positive timeout is at least 1.
    idle_ms = (
        max(round(idle_transaction_timeout * 1000), 1)
        if idle_transaction_timeout
        else 0
    )
    statements = {
        "sqlite": ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"],
        "postgresql": [f"SET idle_in_transaction_session_timeout = {idle_ms}"],
    }.get(engine.dialect.name, [])

    # psycopg would begin a transaction for the SET, and that transaction would then sit
    # idle under the new timeout until its commit: a short timeout could end the session
    # right there. Autocommit runs it outside any (SQLite's PRAGMAs begin none).
    autocommit = engine.dialect.name == "postgresql"

    @event.listens_for(engine, "connect")
    def apply(dbapi_connection, _record):
        if autocommit:
            dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        if autocommit:
            dbapi_connection.autocommit = False


def create_tables(db: SQLAlchemy, attempts: int = 6) -> None:
    """`create_all`, tolerating another instance creating the same tables at the same moment.

    Two processes can both see a table missing and both issue CREATE TABLE; the loser gets
    "already exists" (or a unique violation in PostgreSQL's catalog). Trying again is enough:
    the check-first pass then sees the winner's table.
    """
    for attempt in range(1, attempts + 1):
        try:
            db.create_all()
            add_sqlite_autoincrement(db.engine, db.metadata)
            create_missing_indexes(db)
            return
        except DBAPIError as exc:
            if attempt == attempts:
                raise
            # Expected when the workers of a new service create its tables at once.
            log.info(
                "table creation attempt %d failed (%s), as when another process "
                "creates them at the same moment; retrying",
                attempt,
                type(exc.orig).__name__,
            )
            time.sleep(0.05 * 2**attempt)


def create_missing_indexes(db: SQLAlchemy) -> None:
    """Indexes a model gained after its table was created: create_all only creates missing
    tables, and a list endpoint without its index reads the whole table."""
    with db.engine.begin() as connection:
        for table in db.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)


def add_sqlite_autoincrement(engine: Engine, metadata: MetaData) -> None:
    """Rebuild with AUTOINCREMENT the SQLite tables whose model asks for it
    (`sqlite_autoincrement=True`) but that an earlier version created without it.

    Without AUTOINCREMENT, SQLite numbers a new row max(id) + 1: delete the newest row and
    the next one takes its id, and whatever still refers to the deleted row (orders keep
    their user_id) then points at the newcomer. PostgreSQL's sequences never hand an id
    out twice, so there is nothing to do there. A no-op once done, so it runs at every start.
    """
    if engine.dialect.name != "sqlite":
        return
    wanted = [
        t
        for t in metadata.sorted_tables
        if t.dialect_options["sqlite"]["autoincrement"]
    ]
    if not wanted:
        return
    # Autocommit at the driver, so that our BEGIN IMMEDIATE and COMMIT are the only ones.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in wanted:
            if lacks_autoincrement(connection, table.name):  # the usual answer: no
                rebuild_with_autoincrement(connection, table)


def lacks_autoincrement(connection: Connection, name: str) -> bool:
    """True if the table exists and its CREATE TABLE has no AUTOINCREMENT (SQLite keeps the
    statement as written; SQLAlchemy's own reflection reads the keyword the same way)."""
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).scalar()
    return sql is not None and not re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE)


def rebuild_with_autoincrement(connection: Connection, table: Table) -> None:
    """SQLite's own procedure for a change ALTER TABLE cannot make
    (https://www.sqlite.org/lang_altertable.html#otheralter), in one transaction.

    Several workers and instances may start at once on one file. BEGIN IMMEDIATE takes the
    write lock first, so the others queue behind it (busy timeout) and, checking again
    inside their own transaction, find the table rebuilt and leave it. A failure rolls back
    to the old table, untouched.
    """
    # Enforced foreign keys would make DROP TABLE delete (or refuse) the rows other tables
    # refer to; the pragma cannot change inside a transaction, hence here. The copy keeps
    # every id, so references stay valid.
    enforced = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    if enforced:
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        if lacks_autoincrement(connection, table.name):
            copy_into_new_table(connection, table)
        connection.exec_driver_sql("COMMIT")
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    finally:
        if enforced:
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")


def copy_into_new_table(connection: Connection, table: Table) -> None:
    """Create the model's table under a new name, copy the rows, drop the old table, rename
    the new one and recreate the old one's indexes and triggers.

    The old table is dropped, never renamed away: renaming it would rewrite the foreign keys
    of other tables to name it instead, and dropping it would then leave them dangling. Copying
    rows with their ids into an AUTOINCREMENT table sets its sqlite_sequence entry to the
    largest id (renaming carries the entry along), so the next id is above every one kept.
    """
    quote = connection.dialect.identifier_preparer.quote
    name, new = quote(table.name), quote(f"new_{table.name}")
    columns = [
        row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({name})")
    ]
    if set(columns) != {column.name for column in table.columns}:
        # Not the table the model describes: copying could lose data; leave it be.
        log.warning("table %s differs from its model; not adding AUTOINCREMENT", name)
        return
    others = (
        connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master"
            " WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            (table.name,),
        )
        .scalars()
        .all()
    )
    create = str(CreateTable(table).compile(dialect=connection.dialect))
    header = f"CREATE TABLE {name} ("
    if header not in create:
        raise RuntimeError(f"unexpected DDL for {name}: {create!r}")
    listed = ", ".join(quote(column) for column in columns)
    connection.exec_driver_sql(create.replace(header, f"CREATE TABLE {new} (", 1))
    connection.exec_driver_sql(
        f"INSERT INTO {new} ({listed}) SELECT {listed} FROM {name}"
    )
    connection.exec_driver_sql(f"DROP TABLE {name}")
    connection.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {name}")
    for statement in others:
        connection.exec_driver_sql(statement)
    log.info("rebuilt table %s with AUTOINCREMENT: ids are never reused", name)


def reads_engine(engine: Engine) -> Engine:
    """The engine reading() uses, built once at boot.

    SQLite: the app's own. The driver begins no transaction for a SELECT, so there is
    nothing to switch off (and switching the isolation level costs a PRAGMA each way).
    PostgreSQL: a pool of its own whose connections stay in autocommit, so a read is its
    one round trip, without BEGIN and ROLLBACK. Switching the shared pool's connections to
    autocommit and back on every checkout, as `execution_options` does, doubled the
    Python work of a read. It is disposed with the app's engine.
    """
    if engine.dialect.name == "sqlite":
        return engine
    reads = create_engine(
        engine.url,
        **engine_options(engine.url),
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,  # autocommit: no transaction to roll back
    )
    event.listen(engine, "engine_disposed", lambda _engine: reads.dispose())
    return reads


class Reads:
    """How a service reads, outside the ORM session and any transaction (reads_engine):
    reading()'s connections, and read_row()'s SELECTs run the short way."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._prepared: dict[Select, _Prepared] = {}

    def row(self, statement: Select, params: dict) -> tuple | None:
        """The row `statement` selects with `params` (a named tuple of its columns), or
        None; the statement selects at most one row (by a unique key).

        The SELECT is compiled once, then run on a pooled DBAPI connection: SQLAlchemy's
        Connection, its statement cache lookup (a cache key built from the statement on
        every call) and its result objects were over half of a GET's own work. Two cases
        take the full path instead: an engine with statement listeners (tracing's database
        spans come from them), and a retry after the driver failed, which then gets
        SQLAlchemy's error translation (OperationalError: a 503) and its invalidation of
        the pool's stale connections after a disconnect.
        """
        engine = self.engine
        dispatch = engine.dispatch
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            return self._row_through_sqlalchemy(statement, params)
        prepared = self._prepared.get(statement) or self._prepare(statement)
        driver_error = engine.dialect.loaded_dbapi.Error
        try:
            connection = engine.raw_connection()
        except driver_error as exc:
            raise DBAPIError.instance(
                prepared.sql, params, exc, driver_error, dialect=engine.dialect
            ) from exc
        try:
            cursor = kept_cursor(connection)
            cursor.execute(prepared.sql, prepared.parameters(params))
            # All of it (at most one row): SQLite ends the read transaction at the end.
            rows = cursor.fetchall()
            if prepared.processors is None:
                prepared.learn_types(cursor.description)
            return prepared.record(rows[0]) if rows else None
        except driver_error as exc:
            log.warning("read failed (%s); retrying it", type(exc).__name__)
            connection.invalidate(exc)
            return self._row_through_sqlalchemy(statement, params)
        finally:
            connection.close()

    def _row_through_sqlalchemy(self, statement: Select, params: dict):
        with self.engine.connect() as connection:
            return connection.execute(statement, params).first()

    def _prepare(self, statement: Select) -> "_Prepared":
        prepared = self._prepared[statement] = _Prepared(statement, self.engine.dialect)
        return prepared


def kept_cursor(connection):
    """A cursor of this pooled connection, made once: psycopg's cursor set-up was a tenth
    of a read's own work. SQLAlchemy clears `info` when it replaces the connection."""
    cursor = connection.info.get(CURSOR)
    if cursor is None:
        cursor = connection.info[CURSOR] = connection.cursor()
    return cursor


class _Prepared:
    """A SELECT compiled for one dialect: its SQL, where its named parameters go, and how
    its rows become records (named tuples, values through the column types' result
    processors)."""

    def __init__(self, statement: Select, dialect: Dialect):
        compiled = statement.compile(dialect=dialect)
        for name, bind in compiled.binds.items():
            if not bind.required or bind.expanding or bind.literal_execute:
                raise ValueError(f"{name}: prepared reads take named parameters only")
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"{name}: its type converts values; use reading()")
        self.sql = compiled.string
        self.positions = compiled.positiontup if dialect.positional else None
        self.dialect = dialect
        self.columns = list(statement.selected_columns)
        self.make = namedtuple("Record", [c.key for c in self.columns])._make
        self.processors: list | None = None

    def parameters(self, values: dict):
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)

    def learn_types(self, description) -> None:
        """The result processors, from the driver's first description of the result
        (PostgreSQL's NUMERIC processor depends on the type the server sent)."""
        self.processors = [
            (index, processor)
            for index, (column, described) in enumerate(zip(self.columns, description))
            if (processor := self._result_processor(column, described[1]))
        ]

    def record(self, row: tuple) -> tuple:
        if self.processors:
            row = list(row)
            for index, processor in self.processors:
                row[index] = processor(row[index])
        return self.make(row)

    def _result_processor(self, column, driver_type):
        impl = column.type.dialect_impl(self.dialect)
        return impl.result_processor(self.dialect, driver_type)


def reading() -> Connection:
    """A pooled connection for read-only Core statements, outside the ORM session and any
    transaction (see reads_engine):
    `with reading() as connection: row = connection.execute(STATEMENT, params).first()`.

    A GET needs neither the session's identity map and object loading (half of a request's
    time when measured) nor a transaction: on PostgreSQL a transaction is a BEGIN and a
    ROLLBACK round trip around the one SELECT. Rows have the columns as attributes, so a
    model's to_json serializes them too.
    """
    return current_app.extensions[READS].engine.connect()


def read_row(statement: Select, params: dict) -> tuple | None:
    """The row `statement` selects with `params` (at most one; every parameter a named
    `bindparam`), as a named tuple of its columns, or None; see Reads.row."""
    return current_app.extensions[READS].row(statement, params)


def read_by_id(statement: Select, row_id: int) -> tuple | None:
    """The row `statement` selects for its `id` parameter, or None (also for ids too large
    to exist, see MAX_ID)."""
    if row_id > MAX_ID:
        return None
    return read_row(statement, {"id": row_id})


def ping(db: SQLAlchemy) -> bool:
    """True when the database answers SELECT 1.

    A pooled connection the server ended (a restart, pg_terminate_backend, a pooler's
    timeout) fails once and is replaced, with the rest of the pool: that says nothing of
    the database, and /health failing on it took the instance out of Consul until its next
    check -- every instance at once after a restart. Only a new connection's failure counts.
    """
    try:
        try:
            _select_one(db.engine)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            _select_one(db.engine)  # on a new connection
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" for health
        log.warning("database ping failed: %s", type(exc).__name__)
        return False


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time, time-zone aware: SQLite hands back naive ones, all of them UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """RFC 3339 with a Z; SQLite hands back naive datetimes, and every stored time is UTC.
    (Two per row of every answer: the naive case skips the time-zone round trip, a sixth
    of the cost of serializing a row.)"""
    if moment.tzinfo is None:
        return moment.isoformat() + "Z"
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Timestamps:
    """created_at / updated_at columns for a model (a declarative mixin)."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow
    )
