"""The order status machine: pending -> paid -> shipped -> delivered; pending|paid -> cancelled."""

TRANSITIONS = {
    "pending": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}
STATUSES = tuple(TRANSITIONS)


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())
