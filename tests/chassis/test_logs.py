import pytest

from chassis.env import ConfigError
from chassis.logs import log_level_from_env


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({}, "INFO"),
        ({"LOG_LEVEL": "debug"}, "DEBUG"),
        ({"LOG_LEVEL": " Warning "}, "WARNING"),
    ],
)
def test_log_level_from_env_any_case(env, level):
    assert log_level_from_env(env) == level


def test_unknown_log_level_names_the_variable():
    with pytest.raises(ConfigError, match="^LOG_LEVEL: "):
        log_level_from_env({"LOG_LEVEL": "loud"})
