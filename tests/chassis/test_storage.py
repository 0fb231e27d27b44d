import contextlib
import logging
import shutil
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from chassis.env import ConfigError
from chassis.storage import (
    add_sqlite_autoincrement,
    as_utc,
    create_tables,
    database_url_from_env,
    engine_options,
    init_database,
    install_session_settings,
    iso_utc,
    ping,
    read_row,
    reading,
)
from tests.support.processes import free_port, wait_until
from tests.support.services import (
    DATABASE_KINDS,
    POSTGRES_URL,
    dispose,
    fresh_database,
)
from user_service.app import create_app
from user_service.settings import Settings


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path):
    with fresh_database(request.param, tmp_path, "storage") as url:
        yield url


def test_default_is_a_sqlite_file_per_service_under_var_of_the_current_directory(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert (
        database_url_from_env("user-service", {})
        == f"sqlite:///{tmp_path}/var/user-service.db"
    )
    # Reading the configuration creates nothing (gunicorn's master reads it too).
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATA_DIR": "{tmp}/data"}, "sqlite:///{tmp}/data/svc.db"),
        (
            {"DATABASE_URL": "sqlite:///{tmp}/deep/er/x.db"},
            "sqlite:///{tmp}/deep/er/x.db",
        ),
        (
            {"DATABASE_URL": "postgresql://u:p@db:5432/orders"},
            "postgresql+psycopg://u:p@db:5432/orders",
        ),
        ({"DATABASE_URL": "postgres://db/orders"}, "postgresql+psycopg://db/orders"),
        (
            {"DATABASE_URL": "postgresql+psycopg://db/orders?sslmode=require"},
            "postgresql+psycopg://db/orders?sslmode=require",
        ),
    ],
)
def test_database_url_from_env(tmp_path, env, expected):
    env = {name: value.format(tmp=tmp_path) for name, value in env.items()}
    assert database_url_from_env("svc", env) == expected.format(tmp=tmp_path)


def test_the_directory_of_a_sqlite_file_is_made_when_the_database_is_set_up(tmp_path):
    url = f"sqlite:///{tmp_path}/deep/er/x.db"
    app, db = bound_app(url)
    with app.app_context():
        db.session.execute(text("SELECT 1"))
        db.engine.dispose()
    assert (tmp_path / "deep" / "er" / "x.db").is_file()


@pytest.mark.parametrize("url", ["not a url", "mysql://db/x", "http://example.com"])
def test_bad_database_url_names_the_variable(url):
    with pytest.raises(ConfigError, match="^DATABASE_URL: "):
        database_url_from_env("svc", {"DATABASE_URL": url})


@pytest.mark.parametrize(
    ("url", "keys"),
    [
        ("sqlite:///x.db", {"connect_args"}),
        # no pool_pre_ping: a round trip per request (see engine_options)
        ("postgresql+psycopg://db/x", {"connect_args"}),
    ],
)
def test_engine_options(url, keys):
    assert set(engine_options(url)) == keys


def test_as_utc_treats_naive_times_as_utc_and_keeps_aware_ones():
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert as_utc(naive) == naive.replace(tzinfo=UTC)
    plus_two = naive.replace(tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus_two) is plus_two


def test_iso_utc_treats_naive_times_as_utc():
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert iso_utc(naive) == "2026-01-02T03:04:05Z"
    assert (
        iso_utc(naive.replace(tzinfo=timezone(timedelta(hours=2))))
        == "2026-01-02T01:04:05Z"
    )
    assert iso_utc(naive.replace(tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    precise = naive.replace(microsecond=678900)
    assert iso_utc(precise) == iso_utc(precise.replace(tzinfo=UTC))
    assert iso_utc(precise) == "2026-01-02T03:04:05.678900Z"


class FlakyDatabase:
    """create_all loses the race `failures` times, as when another instance creates the tables."""

    metadata = MetaData()  # no model, so no index to add afterwards
    engine = create_engine("sqlite://")

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0

    def create_all(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError(
                "CREATE TABLE t", {}, Exception("table t already exists")
            )


def test_create_tables_retries_a_lost_creation_race():
    db = FlakyDatabase(failures=2)
    create_tables(db)
    assert db.calls == 3


def test_create_tables_gives_up_eventually():
    db = FlakyDatabase(failures=10)
    with pytest.raises(OperationalError):
        create_tables(db, attempts=3)
    assert db.calls == 3


def racer_database():
    """A fresh SQLAlchemy extension with its own two models, as each instance has."""
    db = SQLAlchemy()

    class Thing(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(10), unique=True)

    class Other(db.Model):
        id = db.Column(db.Integer, primary_key=True)

    return db


@pytest.mark.integration
def test_instances_starting_together_all_create_tables(database_url):
    """Several apps create the same tables at the same moment; each one starts."""
    barrier = threading.Barrier(4)

    def start(_):
        app, db = Flask(__name__, static_folder=None), racer_database()
        barrier.wait(timeout=10)
        init_database(app, db, database_url)
        with app.app_context():
            tables = set(inspect(db.engine).get_table_names())
            db.engine.dispose()
        return tables

    with ThreadPoolExecutor(max_workers=4) as pool:
        for tables in pool.map(start, range(4)):
            assert {"thing", "other"} <= tables


def bound_app(url, instance_id=None, **options):
    """`options`: init_database's."""
    app = Flask(__name__, static_folder=None)
    app.config["INSTANCE_ID"] = instance_id
    db = SQLAlchemy()
    init_database(app, db, url, **options)
    return app, db


@pytest.mark.postgres
def test_postgresql_sessions_are_named_after_the_instance(tmp_path):
    """pg_stat_activity says which instance holds a session (and what it holds), for the
    session's writes and reading()'s alike; a URL that names one keeps its own."""
    query = text(
        "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    with fresh_database("postgresql", tmp_path, "storage") as url:
        for given, expected in (
            (url, "storage-1"),
            (f"{url}&application_name=mine", "mine"),
        ):
            app, db = bound_app(given, instance_id="storage-1")
            with app.app_context():
                assert db.session.scalar(query) == expected
                with reading() as connection:
                    assert connection.scalar(query) == expected
                db.session.remove()
                db.engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, "5s"),
        ({"idle_transaction_timeout": 2.5}, "2500ms"),
        ({"idle_transaction_timeout": 0}, "0"),
    ],
)
def test_postgresql_ends_a_session_idle_inside_a_transaction(tmp_path, options, shown):
    """So a frozen or stuck instance cannot hold what it wrote for ever (README: When an
    instance freezes): after 5 s by default, or DATABASE_IDLE_TRANSACTION_TIMEOUT's
    seconds (0 is off)."""
    with fresh_database("postgresql", tmp_path, "storage") as url:
        app, db = bound_app(url, **options)
        with app.app_context():
            setting = db.session.scalar(
                text("SHOW idle_in_transaction_session_timeout")
            )
            db.session.remove()
            db.engine.dispose()
    assert setting == shown


@pytest.mark.postgres
def test_a_tiny_idle_transaction_timeout_is_one_millisecond_never_off(tmp_path):
    """0.0001 s is PostgreSQL's 1 ms, not 0 (off). A session that short-lived dies in any
    transaction that waits a millisecond between statements, so: the engine alone (no
    create_all), the setting applied outside a transaction, and read outside one."""
    with fresh_database("postgresql", tmp_path, "storage") as url:
        engine = create_engine(url)
        install_session_settings(engine, 0.0001)
        try:
            autocommit = engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
            with autocommit as connection:
                setting = connection.scalar(
                    text("SHOW idle_in_transaction_session_timeout")
                )
        finally:
            engine.dispose()
    assert setting == "1ms"


@pytest.mark.postgres
def test_a_session_postgresql_ended_mid_transaction_costs_one_503_then_writes_recover(
    tmp_path,
):
    """What an instance frozen inside a transaction meets when it thaws: PostgreSQL ended
    its session (an InternalError, not an OperationalError). A 503 with Retry-After, like
    any lost connection, and the next request gets a new one."""
    with fresh_database("postgresql", tmp_path, "storage") as url:
        app, db = bound_app(url)
        admin = create_engine(POSTGRES_URL)

        def session_gone(pid: int) -> bool:
            with admin.connect() as connection:
                query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
                return connection.scalar(query, {"pid": pid}) == 0

        @app.post("/write")
        def write():
            pid = db.session.scalar(text("SELECT pg_backend_pid()"))  # begins
            if request.args.get("freeze"):  # idle inside the transaction until ended
                db.session.execute(
                    text("SET idle_in_transaction_session_timeout = 100")
                )
                wait_until(lambda: session_gone(pid), 10, what="the session ended")
            db.session.commit()
            return {"pid": pid}

        client = app.test_client()
        failed = client.post("/write?freeze=1")
        assert failed.status_code == 503
        assert failed.json["error"]["code"] == "database_unavailable"
        assert failed.headers["Retry-After"] == "1"
        assert client.post("/write").status_code == 200
        with app.app_context():
            db.engine.dispose()
        admin.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    app, db = bound_app(f"sqlite:///{tmp_path}/wal.db")
    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
        db.engine.dispose()


def test_ping_is_false_when_the_database_is_gone(tmp_path):
    (tmp_path / "data").mkdir()
    app, db = bound_app(f"sqlite:///{tmp_path}/data/gone.db")
    with app.app_context():
        assert ping(db)
        db.engine.dispose()
        shutil.rmtree(
            tmp_path / "data"
        )  # a new connection cannot open the file any more
        assert not ping(db)


def test_ping_is_false_when_postgresql_does_not_answer():
    app = Flask(__name__, static_folder=None)
    db = SQLAlchemy()
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x",
        SQLALCHEMY_ENGINE_OPTIONS=engine_options("postgresql+psycopg://db/x"),
    )
    db.init_app(app)
    with app.app_context():
        assert not ping(db)


@pytest.mark.postgres
def test_ping_is_true_after_postgresql_ended_a_pooled_connection(tmp_path):
    """A stale pooled connection says nothing of the database: /health failing on it took
    the instance out of Consul until its next check (every instance, after a restart)."""
    with fresh_database("postgresql", tmp_path, "storage") as url:
        app, db = bound_app(url)
        with app.app_context():
            with db.engine.connect() as connection:  # the pool's one connection
                pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                )
            admin.dispose()
            assert ping(db)
            db.engine.dispose()


@contextlib.contextmanager
def sql_ascii_database():
    """A new PostgreSQL database in SQL_ASCII, as `initdb` makes under the C locale; dropped
    afterwards."""
    if not POSTGRES_URL:
        pytest.skip("SWITCHYARD_TEST_POSTGRES_URL is not set")
    name = f"t_ascii_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                f"CREATE DATABASE {name} WITH ENCODING 'SQL_ASCII' "
                "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        )
    try:
        yield (
            make_url(POSTGRES_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.postgres
def test_a_service_boots_and_keeps_non_ascii_text_on_a_sql_ascii_database():
    # The reported failure: every worker died at boot in SQLAlchemy's server version check.
    with sql_ascii_database() as url:
        app = create_app(Settings(database_url=url))
        db = app.extensions["sqlalchemy"]
        try:
            client = app.test_client()
            created = client.post(
                "/users", json={"name": "Zoë", "email": "zoe@example.com"}
            )
            assert created.status_code == 201, created.json
            read = client.get(f"/users/{created.json['id']}")
            assert (read.status_code, read.json["name"]) == (200, "Zoë")
            with app.app_context(), db.engine.connect() as connection:
                encoding = connection.execute(
                    text(
                        "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                        "WHERE datname = current_database()"
                    )
                ).scalar()
                stored = connection.execute(
                    text("SELECT octet_length(name) FROM users")
                ).scalar()
            # Stored as UTF-8 (ë is two bytes), so other UTF8 clients read it back alike.
            assert (encoding, stored) == ("SQL_ASCII", 4)
        finally:
            dispose(app, db)


def test_reading_sees_commits_and_leaves_the_pool_as_it_found_it(database_url):
    """reading() borrows the session's pool in autocommit (PostgreSQL): a connection it
    returns must be transactional again for the next session, or a rollback would undo
    nothing."""
    app, db = bound_app(database_url)
    with app.app_context():
        db.session.execute(text("CREATE TABLE t (n INTEGER)"))
        db.session.execute(text("INSERT INTO t VALUES (1)"))
        db.session.commit()
        with reading() as connection:
            assert connection.execute(text("SELECT n FROM t")).scalars().all() == [1]
        db.session.execute(text("INSERT INTO t VALUES (2)"))
        db.session.rollback()
        with reading() as connection:
            assert connection.execute(text("SELECT n FROM t")).scalars().all() == [1]
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgres
def test_a_connection_postgresql_dropped_costs_one_503_then_reads_recover(tmp_path):
    """Without pool_pre_ping (engine_options) a stale pooled connection fails once, as a 503
    with Retry-After, and SQLAlchemy's disconnect detection replaces it for the next request."""
    with fresh_database("postgresql", tmp_path, "storage") as url:
        app, db = bound_app(url)

        @app.get("/backend")
        def backend():
            with reading() as connection:
                return {
                    "pid": connection.execute(text("SELECT pg_backend_pid()")).scalar()
                }

        client = app.test_client()
        pid = client.get("/backend").json["pid"]
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        failed = client.get("/backend")
        assert failed.status_code == 503
        assert failed.json["error"]["code"] == "database_unavailable"
        assert failed.headers["Retry-After"] == "1"
        recovered = client.get("/backend")
        assert recovered.status_code == 200
        assert recovered.json["pid"] != pid
        with app.app_context():
            db.engine.dispose()


THINGS = Table(
    "things",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("at", DateTime(timezone=True)),
)
THING_BY_ID = select(THINGS).where(THINGS.c.id == bindparam("id"))
MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)


@contextlib.contextmanager
def things_app(url):
    """A bound app with the things table and thing 1 in it, inside its app context."""
    app, db = bound_app(url)
    with app.app_context():
        THINGS.create(db.engine)
        with db.engine.begin() as connection:
            connection.execute(insert(THINGS), {"id": 1, "name": "one", "at": MOMENT})
        try:
            yield app, db
        finally:
            db.engine.dispose()


def test_read_row_gives_what_sqlalchemy_gives(database_url):
    """The short path (compiled once, a pooled DBAPI connection) must hand back the same
    values as a Core read, the column types' conversions included (SQLite stores the
    time as text)."""
    with things_app(database_url):
        row = read_row(THING_BY_ID, {"id": 1})
        read_again = read_row(THING_BY_ID, {"id": 1})  # compiled and typed once
        with reading() as connection:
            expected = connection.execute(THING_BY_ID, {"id": 1}).first()
        assert tuple(row) == tuple(read_again) == tuple(expected)
        assert (row.id, row.name, iso_utc(row.at)) == (1, "one", iso_utc(MOMENT))
        assert read_row(THING_BY_ID, {"id": 2}) is None


def test_read_row_takes_named_parameters_only(database_url):
    with (
        things_app(database_url),
        pytest.raises(ValueError, match="named parameters only"),
    ):
        read_row(select(THINGS).where(THINGS.c.id == 1), {})


def test_read_row_goes_through_sqlalchemy_when_statements_are_listened_to(
    database_url,
):
    """Tracing's database spans come from the engine's statement events: with a listener
    the read must fire them."""
    with things_app(database_url) as (app, _):
        seen = []
        engine = app.extensions["storage.reads"].engine
        event.listen(
            engine,
            "after_cursor_execute",
            lambda _c, _cursor, statement, *_: seen.append(statement),
        )
        assert read_row(THING_BY_ID, {"id": 1}).name == "one"
        assert len(seen) == 1 and "things" in seen[0]


def test_read_row_leaves_no_sqlite_read_transaction_open(tmp_path):
    """The pooled connection goes back idle: a read transaction left open would keep
    every checkpoint from emptying the WAL, which would then grow for ever."""
    with things_app(f"sqlite:///{tmp_path}/wal.db"):
        read_row(THING_BY_ID, {"id": 1})
        checkpointer = create_engine(f"sqlite:///{tmp_path}/wal.db")
        with checkpointer.connect() as connection:
            busy, _, _ = connection.execute(
                text("PRAGMA wal_checkpoint(TRUNCATE)")
            ).one()
        checkpointer.dispose()
        assert busy == 0


def test_read_row_answers_a_failed_connect_as_sqlalchemy_would(tmp_path, monkeypatch):
    """The database unreachable: an OperationalError the services answer with a 503."""
    with things_app(f"sqlite:///{tmp_path}/gone.db") as (app, _):
        engine = app.extensions["storage.reads"].engine

        def refuse():
            raise sqlite3.OperationalError("unable to open database file")

        monkeypatch.setattr(engine, "raw_connection", refuse)
        with pytest.raises(OperationalError):
            read_row(THING_BY_ID, {"id": 1})


@pytest.mark.postgres
def test_a_connection_postgresql_dropped_costs_read_row_nothing(tmp_path):
    """The short path retries a read that failed on a stale pooled connection, through
    SQLAlchemy, which replaces the connection."""
    backend = select(func.pg_backend_pid().label("pid"))
    with (
        fresh_database("postgresql", tmp_path, "storage") as url,
        things_app(url),
    ):
        pid = read_row(backend, {}).pid
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        assert read_row(backend, {}).pid != pid
        assert read_row(THING_BY_ID, {"id": 1}).name == "one"


def test_create_tables_adds_an_index_a_model_gained_after_its_table(database_url):
    """create_all skips existing tables; their new indexes must still appear (a list
    endpoint reads the whole table without its index)."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE thing (id INTEGER PRIMARY KEY, name VARCHAR(10))")
        )
    engine.dispose()
    db = SQLAlchemy()

    class Thing(db.Model):
        __tablename__ = "thing"
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(10), index=True)

    app = Flask(__name__, static_folder=None)
    init_database(app, db, database_url)
    with app.app_context():
        indexes = inspect(db.engine).get_indexes("thing")
        assert [(i["name"], i["column_names"]) for i in indexes] == [
            ("ix_thing_name", ["name"])
        ]
        db.engine.dispose()


def autoincrement_models() -> MetaData:
    """A parent whose model asks for AUTOINCREMENT and a child referring to it."""
    metadata = MetaData()
    Table(
        "parent",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(10), nullable=False, unique=True),
        Column("rank", Integer, index=True),
        sqlite_autoincrement=True,
    )
    Table(
        "child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column(
            "parent_id", ForeignKey("parent.id", ondelete="CASCADE"), nullable=False
        ),
    )
    return metadata


# Those tables as SQLAlchemy created them before the model asked for AUTOINCREMENT, with
# an index no model knows of and a trigger, then rows.
WITHOUT_AUTOINCREMENT = [
    (
        "CREATE TABLE parent (id INTEGER NOT NULL, name VARCHAR(10) NOT NULL,"
        " rank INTEGER, PRIMARY KEY (id), UNIQUE (name))"
    ),
    "CREATE INDEX ix_parent_rank ON parent (rank)",
    "CREATE INDEX by_hand ON parent (name, rank)",
    (
        "CREATE TRIGGER renamed AFTER UPDATE OF name ON parent"
        " BEGIN UPDATE parent SET rank = -1 WHERE id = NEW.id; END"
    ),
    (
        "CREATE TABLE child (id INTEGER NOT NULL, parent_id INTEGER NOT NULL,"
        " PRIMARY KEY (id),"
        " FOREIGN KEY(parent_id) REFERENCES parent (id) ON DELETE CASCADE)"
    ),
    "INSERT INTO parent VALUES (1, 'one', 1), (2, 'two', 2), (7, 'seven', 7)",
    "INSERT INTO child VALUES (1, 7), (2, 2)",
]


def old_sqlite_file(tmp_path, statements=WITHOUT_AUTOINCREMENT, foreign_keys=False):
    """An engine on a SQLite file holding `statements`' tables and rows."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url, **engine_options(url))
    if foreign_keys:
        event.listen(
            engine,
            "connect",
            lambda connection, _: connection.execute("PRAGMA foreign_keys = ON"),
        )
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    return engine


def sqlite_schema(engine) -> dict:
    """Every table, index and trigger: name -> its SQL (None for a constraint's index)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master")
        return dict(rows.all())


def sqlite_contents(engine) -> dict:
    with engine.connect() as connection:
        return {
            table: connection.exec_driver_sql(f"SELECT * FROM {table}").all()
            for table in ("parent", "child")
        }


def schema_version(engine) -> int:
    """SQLite's counter of schema changes: unchanged means nothing was rebuilt."""
    with engine.connect() as connection:
        return connection.exec_driver_sql("PRAGMA schema_version").scalar()


@pytest.mark.parametrize("foreign_keys", [False, True])
def test_an_old_sqlite_table_gets_autoincrement_with_all_it_had(tmp_path, foreign_keys):
    """Rows, indexes (the model's and others), the unique constraint, the trigger and the
    child's foreign key all survive; with foreign keys enforced, no child row goes with
    the old table (ON DELETE CASCADE)."""
    engine = old_sqlite_file(tmp_path, foreign_keys=foreign_keys)
    schema, contents = sqlite_schema(engine), sqlite_contents(engine)
    add_sqlite_autoincrement(engine, autoincrement_models())
    rebuilt = sqlite_schema(engine)
    assert "AUTOINCREMENT" in rebuilt.pop("parent")
    assert "sqlite_sequence" in rebuilt.pop("sqlite_sequence")
    del schema["parent"]
    assert rebuilt == schema  # child, indexes (named alike), trigger: as they were
    assert sqlite_contents(engine) == contents
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        assert run("PRAGMA foreign_key_check").all() == []
        assert run("SELECT seq FROM sqlite_sequence").all() == [(7,)]
        run("DELETE FROM parent WHERE id = 7")
        run("INSERT INTO parent (name) VALUES ('eight')")
        assert run("SELECT max(id) FROM parent").scalar() == 8
        run("UPDATE parent SET name = 'uno' WHERE id = 1")
        assert run("SELECT rank FROM parent WHERE id = 1").scalar() == -1
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO parent (name) VALUES ('two')")
    engine.dispose()


def test_the_autoincrement_upgrade_is_done_once(tmp_path, caplog):
    engine = old_sqlite_file(tmp_path)
    add_sqlite_autoincrement(engine, autoincrement_models())
    version = schema_version(engine)
    add_sqlite_autoincrement(engine, autoincrement_models())
    assert schema_version(engine) == version
    engine.dispose()
    fresh = create_engine(f"sqlite:///{tmp_path}/new.db")  # a new file: made right
    autoincrement_models().create_all(fresh)
    version = schema_version(fresh)
    add_sqlite_autoincrement(fresh, autoincrement_models())
    assert schema_version(fresh) == version
    assert "AUTOINCREMENT" in sqlite_schema(fresh)["parent"]
    fresh.dispose()


def test_instances_starting_together_upgrade_an_old_table_once(tmp_path, caplog):
    """Every worker and instance runs the upgrade at start, on the same file."""
    old_sqlite_file(tmp_path).dispose()
    url = f"sqlite:///{tmp_path}/old.db"
    barrier = threading.Barrier(6)

    def start(_):
        engine = create_engine(url, **engine_options(url))
        barrier.wait(timeout=10)
        try:
            add_sqlite_autoincrement(engine, autoincrement_models())
        finally:
            engine.dispose()

    with (
        caplog.at_level(logging.INFO, logger="storage"),
        ThreadPoolExecutor(max_workers=6) as pool,
    ):
        list(pool.map(start, range(6)))
    rebuilt = [r for r in caplog.records if "AUTOINCREMENT" in r.getMessage()]
    assert len(rebuilt) == 1
    engine = create_engine(url)
    assert "AUTOINCREMENT" in sqlite_schema(engine)["parent"]
    assert sqlite_contents(engine)["parent"] == [
        (1, "one", 1),
        (2, "two", 2),
        (7, "seven", 7),
    ]
    engine.dispose()


def test_a_failed_autoincrement_upgrade_leaves_the_old_table(tmp_path):
    """A row the model's table refuses (a NULL name) fails the copy: all is rolled back."""
    statements = [
        (
            "CREATE TABLE parent (id INTEGER NOT NULL, name VARCHAR(10),"
            " rank INTEGER, PRIMARY KEY (id))"
        ),
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER)",
        "INSERT INTO parent VALUES (1, NULL, 1)",
    ]
    engine = old_sqlite_file(tmp_path, statements)
    schema, contents = sqlite_schema(engine), sqlite_contents(engine)
    with pytest.raises(IntegrityError):
        add_sqlite_autoincrement(engine, autoincrement_models())
    assert (sqlite_schema(engine), sqlite_contents(engine)) == (schema, contents)
    engine.dispose()


def test_a_table_unlike_its_model_is_left_without_autoincrement(tmp_path, caplog):
    statements = [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(10), extra TEXT)",
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER)",
    ]
    engine = old_sqlite_file(tmp_path, statements)
    version = schema_version(engine)
    with caplog.at_level(logging.WARNING, logger="storage"):
        add_sqlite_autoincrement(engine, autoincrement_models())
    assert schema_version(engine) == version
    assert "differs from its model" in caplog.text
    engine.dispose()
