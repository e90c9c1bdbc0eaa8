"""Settings from the environment (docs/contract.md, "Configuration")."""

from __future__ import annotations

import pytest

from zego_resume.config import ConfigurationError, Settings

REQUIRED = {
    "ZEGO_SECRET_ID": "zego/credentials",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/zego-resume-dlq",
}


def _settings(**overrides: str) -> Settings:
    return Settings.from_environ({**REQUIRED, **overrides})


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_a_missing_required_variable_is_named(name: str, value: str | None) -> None:
    environ = dict(REQUIRED)
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ(environ)


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_environ(REQUIRED)
    assert settings.secret_id == REQUIRED["ZEGO_SECRET_ID"]
    assert settings.dead_letter_queue_url == REQUIRED["DEAD_LETTER_QUEUE_URL"]
    assert settings.api_base_url == "https://rtc-api.zego.im"
    assert settings.is_test is False
    assert settings.max_calls_per_second == 20
    assert settings.max_receive_count is None
    assert settings.read_timeout_seconds > 0


def test_every_optional_variable_is_read() -> None:
    settings = _settings(
        ZEGO_API_BASE_URL="http://127.0.0.1:8080/",
        ZEGO_IS_TEST="true",
        ZEGO_MAX_CALLS_PER_SECOND="5",
        MAX_RECEIVE_COUNT="3",
        ZEGO_READ_TIMEOUT_SECONDS="1.5",
    )
    assert settings.api_base_url == "http://127.0.0.1:8080"
    assert settings.is_test is True
    assert settings.max_calls_per_second == 5
    assert settings.max_receive_count == 3
    assert settings.read_timeout_seconds == 1.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_zego_is_test_accepts_the_usual_spellings(value: str, expected: bool) -> None:
    assert _settings(ZEGO_IS_TEST=value).is_test is expected


@pytest.mark.parametrize("value", ["maybe", "2", "on-ish"])
def test_a_bad_zego_is_test_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ZEGO_IS_TEST"):
        _settings(ZEGO_IS_TEST=value)


@pytest.mark.parametrize("name", ["ZEGO_MAX_CALLS_PER_SECOND", "MAX_RECEIVE_COUNT"])
@pytest.mark.parametrize("value", ["0", "abc", "2.5", "-3"])
def test_a_bad_count_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        _settings(**{name: value})


@pytest.mark.parametrize("name", ["ZEGO_MAX_CALLS_PER_SECOND", "MAX_RECEIVE_COUNT"])
def test_a_non_ascii_digit_count_is_refused_as_a_configuration_error(name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        _settings(**{name: "²"})


@pytest.mark.parametrize(
    "value", ["rtc-api.zego.im", "ftp://rtc-api.zego.im", "//rtc-api.zego.im", "https://", "http:///x"]
)
def test_a_base_url_without_http_scheme_or_host_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ZEGO_API_BASE_URL"):
        _settings(ZEGO_API_BASE_URL=value)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_a_bad_read_timeout_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ZEGO_READ_TIMEOUT_SECONDS"):
        _settings(ZEGO_READ_TIMEOUT_SECONDS=value)


def test_the_fleet_budget_and_its_knobs_default_as_documented() -> None:
    settings = Settings.from_environ(REQUIRED)
    assert settings.rate_ledger_table is None
    assert (settings.fleet_calls_per_second, settings.max_calls_per_second) == (20, 20)
    assert settings.arrival_jitter_ms == 40
    assert settings.outage_probe_seconds == 10
    assert settings.redelivery_max_delay_seconds == 120
    assert settings.decision_max_age_seconds == 86_400
    test_app = _settings(ZEGO_IS_TEST="true")
    assert (test_app.fleet_calls_per_second, test_app.max_calls_per_second) == (5, 5)


def test_a_share_and_a_ledger_are_read() -> None:
    settings = _settings(
        ZEGO_RATE_LEDGER_TABLE=" ledger ", ZEGO_FLEET_CALLS_PER_SECOND="20", ZEGO_MAX_CALLS_PER_SECOND="10"
    )
    assert settings.rate_ledger_table == "ledger"
    assert (settings.fleet_calls_per_second, settings.max_calls_per_second) == (20, 10)


def test_a_share_above_the_fleet_budget_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="ZEGO_MAX_CALLS_PER_SECOND"):
        _settings(ZEGO_FLEET_CALLS_PER_SECOND="10", ZEGO_MAX_CALLS_PER_SECOND="20")


@pytest.mark.parametrize(
    "name", ["ZEGO_ARRIVAL_JITTER_MS", "REDELIVERY_MAX_DELAY_SECONDS", "DECISION_MAX_AGE_SECONDS"]
)
def test_a_malformed_knob_is_named(name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        _settings(**{name: "soon"})
