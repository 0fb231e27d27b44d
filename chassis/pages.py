"""Lists in pages, as every list endpoint answers them: rows in id order, read from an
index, `limit` at a time, after the id the client saw last (`after`: keyset pagination)
and/or after skipping `offset` rows, with a `next` link that continues by keyset.

    GET /users?limit=2          {"items": [<1>, <2>], "total": 5, "limit": 2, "offset": 0,
                                 "after": null, "next": "/users?limit=2&after=2"}
    GET /users?limit=2&after=4  {"items": [<5>], "total": null, "limit": 2, "offset": 0,
                                 "after": 4, "next": null}

What a page costs: a keyset page reads `limit` + 1 index entries wherever it starts, so
paging through any number of rows stays O(page) per page; an offset page also walks the
`offset` entries it skips (O(offset)). `total`, an exact count of the matching rows, reads
every matching index entry (a scan of the table when unfiltered), so keyset pages leave it
out (null): a client paging through everything pays it once, on the first page.
"""

from collections.abc import Callable, Sequence

from flask import request, url_for
from sqlalchemy import ColumnElement, Select, Table, func, select

from chassis.inputs import PageRequest
from chassis.storage import reading

__all__ = ["page_statements", "read_page"]


def page_statements(
    table: Table, conditions: Sequence[ColumnElement], page: PageRequest
) -> tuple[Select | None, Select]:
    """The count of `table`'s rows matching `conditions` (None for a keyset page), and the
    page in id order with one row more than asked for: that row says a next page exists.

    Both are served by an index on the conditions' columns followed by id (the primary key
    when unfiltered), without a sort; the services' tests check the plans.
    """
    count = None
    if page.after is None:
        count = select(func.count()).select_from(table).where(*conditions)
    else:
        conditions = [*conditions, table.c.id > page.after]
    rows = (
        select(table)
        .where(*conditions)
        .order_by(table.c.id)
        .limit(page.limit + 1)
        .offset(page.offset)
    )
    return count, rows


def read_page(
    table: Table,
    conditions: Sequence[ColumnElement],
    page: PageRequest,
    to_json: Callable[[object], dict],
) -> dict:
    """The JSON of one page of `table`'s rows matching `conditions` (see the module)."""
    count, statement = page_statements(table, conditions, page)
    with reading() as connection:
        total = None if count is None else connection.scalar(count)
        rows = connection.execute(statement).all()
    more = len(rows) > page.limit
    return {
        "items": [to_json(row) for row in rows[: page.limit]],
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "after": page.after,
        "next": next_link(rows[page.limit - 1].id) if more else None,
    }


def next_link(after: int) -> str:
    """This request's path and query (the gateway's prefix included, as in Location
    headers) asking for the page after id `after` instead of any offset."""
    args = request.args.to_dict()
    args.pop("offset", None)
    args.pop("after", None)  # and the new one last, whatever order the client used
    args["after"] = after
    return url_for(request.endpoint, **{**args, **request.view_args})
