import pytest

from devconsul.thresholds import StatusFilter

P, W, C = "passing", "warning", "critical"


@pytest.mark.parametrize(
    ("limits", "results", "applied"),
    [
        ((0, 0, 0), [C, P, C], [C, P, C]),
        # The first result applies at once; afterwards thresholds count.
        ((2, 0, 0), [P, C, P, P], [P, C, None, P]),
        ((0, 0, 3), [C, P, C, C, C], [C, P, None, None, C]),
        ((0, 1, 3), [P, C, C, C], [P, W, W, C]),
        ((2, 0, 2), [P, C, C, P, W], [P, None, C, None, W]),
    ],
)
def test_status_filter(limits, results, applied):
    f = StatusFilter(*limits)
    assert [f.apply(r) for r in results] == applied
