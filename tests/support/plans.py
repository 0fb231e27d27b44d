"""Query plans, for tests that keep list endpoints O(page) at scale: assertions about which
index a statement uses, not about timings."""

import json

from sqlalchemy import Select, Table, insert
from sqlalchemy.engine import Connection

BULK_ROWS = 100_000


def bulk_insert(connection: Connection, table: Table, rows) -> None:
    """Insert many rows quickly: one executemany per batch, no ORM."""
    rows = list(rows)
    for start in range(0, len(rows), 10_000):
        connection.execute(insert(table), rows[start : start + 10_000])
    if connection.dialect.name == "postgresql":
        # Statistics now, as autovacuum would do later: the planner must know the table.
        # Taken from every row, not ANALYZE's random sample of 300 x the target: some plans
        # are close calls, and about one sample in 60 tipped one of them (a test of plans
        # must not depend on a dice roll; the orders test says which plan, and its cost).
        target = min(10_000, -(-len(rows) // 300))
        connection.exec_driver_sql(f"SET LOCAL default_statistics_target = {target}")
        connection.exec_driver_sql(f"ANALYZE {table.name}")


def assert_served_by(plan: str, index: str) -> None:
    """`plan` (query_plan's) reads `index`, with no sort and no scan of the table."""
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan


def query_plan(connection: Connection, statement: Select) -> str:
    """The database's plan for `statement`, as text: EXPLAIN QUERY PLAN's lines on SQLite,
    the node types and index names of EXPLAIN (FORMAT JSON) on PostgreSQL."""
    sql = str(
        statement.compile(
            dialect=connection.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
        return "\n".join(row[-1] for row in rows)
    [[document]] = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").all()
    if isinstance(document, str):
        document = json.loads(document)
    return "\n".join(_nodes(document[0]["Plan"]))


def _nodes(node: dict):
    yield " ".join(
        filter(
            None, [node["Node Type"], node.get("Index Name"), node.get("Relation Name")]
        )
    )
    for child in node.get("Plans", ()):
        yield from _nodes(child)
