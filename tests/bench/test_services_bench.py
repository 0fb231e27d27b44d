"""bench.services_bench's breakdown of POST /orders names its parts by file and function:
each must still exist, or its share would print as 0 (a function renamed, the bench quiet)."""

import importlib.util
import re
from pathlib import Path

import pytest

from bench.services_bench import PARTS


def source_of(suffix: str) -> str:
    """Our own file, or an installed package's (sqlalchemy/...)."""
    root = Path(__file__).resolve().parents[2]
    if (root / suffix).is_file():
        return (root / suffix).read_text()
    package, _, rest = suffix.partition("/")
    spec = importlib.util.find_spec(package)
    return (Path(spec.origin).parent / rest).read_text()


@pytest.mark.parametrize(
    ("suffix", "function"),
    [place for _, places in PARTS for place in places],
    ids=lambda value: value,
)
def test_each_part_of_the_post_breakdown_names_a_function_that_exists(suffix, function):
    assert re.search(rf"^\s*def {function}\(", source_of(suffix), re.MULTILINE)
