"""ZEGO's AppId and ServerSecret from Secrets Manager, through a fake of Powertools' get_secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from zego_resume.adapters.secret_source import SecretsManagerCredentials, parse_credentials
from zego_resume.ports import SecretError, ZegoCredentials

from .fakes import APP_ID, ROTATED_SECRET, SECRET, FakeClock

SECRET_ID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zego-abc123"


def _document(app_id: object = APP_ID, server_secret: object = SECRET) -> str:
    return json.dumps({"AppId": app_id, "ServerSecret": server_secret})


# --- parse_credentials ------------------------------------------------------------------------


@pytest.mark.parametrize("app_id", [APP_ID, str(APP_ID)], ids=["int", "digit-string"])
def test_parse_accepts_an_integer_or_digit_string_app_id(app_id: object) -> None:
    assert parse_credentials(_document(app_id=app_id)) == ZegoCredentials(APP_ID, SECRET)


def test_parse_accepts_the_largest_uint32_app_id() -> None:
    assert parse_credentials(_document(app_id=2**32 - 1)).app_id == 2**32 - 1


def test_parse_ignores_other_keys() -> None:
    raw = json.dumps({"AppId": APP_ID, "ServerSecret": SECRET, "Comment": "rotated monthly"})
    assert parse_credentials(raw) == ZegoCredentials(APP_ID, SECRET)


BAD_SECRETS = [
    pytest.param(f"AppId={APP_ID} ServerSecret={SECRET}", None, id="not-json"),
    pytest.param(f'{{"AppId": {APP_ID}, "ServerSecret": "{SECRET}"', None, id="truncated-json"),
    pytest.param(json.dumps([APP_ID, SECRET]), None, id="json-list"),
    pytest.param(json.dumps(SECRET), None, id="json-string"),
    pytest.param(json.dumps({"ServerSecret": SECRET}), "AppId", id="missing-app-id"),
    pytest.param(json.dumps({"AppId": APP_ID}), "ServerSecret", id="missing-server-secret"),
    pytest.param(_document(app_id=0), "AppId", id="app-id-0"),
    pytest.param(_document(app_id=2**32), "AppId", id="app-id-2-pow-32"),
    pytest.param(_document(app_id=-1), "AppId", id="app-id-negative"),
    pytest.param(_document(app_id="abc"), "AppId", id="app-id-abc"),
    pytest.param(_document(app_id=True), "AppId", id="app-id-true"),
    pytest.param(_document(app_id=1.5), "AppId", id="app-id-float"),
    pytest.param(_document(app_id=SECRET), "AppId", id="app-id-holding-the-secret"),
    pytest.param(_document(server_secret=""), "ServerSecret", id="server-secret-empty"),
    pytest.param(_document(server_secret="   "), "ServerSecret", id="server-secret-blank"),
    pytest.param(_document(server_secret=[SECRET]), "ServerSecret", id="server-secret-a-list"),
    pytest.param(None, None, id="no-secret-string"),
]


@pytest.mark.parametrize(("raw", "named"), BAD_SECRETS)
def test_parse_rejects_a_bad_secret_naming_the_fault_never_the_value(raw: Any, named: str | None) -> None:
    # Given a malformed secret (most of them holding the real secret somewhere)
    # When it is parsed
    with pytest.raises(SecretError) as raised:
        parse_credentials(raw)
    # Then it is InvalidSecret, names the key at fault, and no message anywhere carries the secret
    error = raised.value
    assert error.code == "InvalidSecret"
    if named is not None:
        assert named in error.message
    assert SECRET not in error.message
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    for linked in (error.__cause__, error.__context__):
        assert linked is None or SECRET not in str(linked)


def test_credentials_keep_the_secret_out_of_their_repr() -> None:
    assert SECRET not in repr(parse_credentials(_document()))


# --- SecretsManagerCredentials ------------------------------------------------------------------


class FakeSecretStore:
    """Secrets Manager: what it holds now, and every read of it."""

    def __init__(self, value: str) -> None:
        self.stored = value
        self.reads: list[str] = []  # the secret ids read
        self.error: Exception | None = None

    def __call__(self, secret_id: str) -> str:
        self.reads.append(secret_id)
        if self.error is not None:
            raise self.error
        return self.stored


def _source(store: FakeSecretStore, clock: FakeClock | None = None) -> SecretsManagerCredentials:
    return SecretsManagerCredentials(SECRET_ID, fetch=store, max_age=300, clock=clock or FakeClock(0.0))


def test_current_reads_the_named_secret() -> None:
    store = FakeSecretStore(_document())
    assert _source(store).current() == ZegoCredentials(APP_ID, SECRET)
    assert store.reads == [SECRET_ID]


def test_current_answers_from_the_cache_within_max_age() -> None:
    # Given credentials read once
    clock = FakeClock(0.0)
    store = FakeSecretStore(_document())
    source = _source(store, clock)
    first = source.current()
    # When they are asked for again just before max_age
    clock.advance(299.0)
    second = source.current()
    # Then the same credentials come back without another read
    assert second is first
    assert len(store.reads) == 1


def test_current_reads_again_once_max_age_has_passed() -> None:
    # Given a secret rotated behind the cache
    clock = FakeClock(0.0)
    store = FakeSecretStore(_document())
    source = _source(store, clock)
    source.current()
    store.stored = _document(server_secret=ROTATED_SECRET)
    # When max_age has passed
    clock.advance(300.0)
    # Then the rotated secret is read
    assert source.current().server_secret == ROTATED_SECRET
    assert len(store.reads) == 2


def test_current_keeps_the_cached_secret_until_a_refresh() -> None:
    store = FakeSecretStore(_document())
    source = _source(store)
    source.current()
    store.stored = _document(server_secret=ROTATED_SECRET)  # rotated behind the cache
    assert source.current().server_secret == SECRET


def test_refresh_reads_the_rotated_secret_at_once() -> None:
    # Given a secret rotated after it was cached
    store = FakeSecretStore(_document())
    source = _source(store)
    stale = source.current()
    store.stored = _document(server_secret=ROTATED_SECRET)
    # When the stale credentials are refreshed (well within max_age)
    fresh = source.refresh(stale)
    # Then the secret was read again and the new credentials are current
    assert len(store.reads) == 2
    assert fresh.server_secret == ROTATED_SECRET
    assert source.current().server_secret == ROTATED_SECRET


def test_a_second_refresh_of_the_same_stale_credentials_does_not_fetch_again() -> None:
    # Given two parallel calls refused with the same stale credentials, one of which refreshed
    store = FakeSecretStore(_document())
    source = _source(store)
    stale = source.current()
    store.stored = _document(server_secret=ROTATED_SECRET)
    source.refresh(stale)
    reads = len(store.reads)
    # When the other one refreshes the same stale credentials
    fresh = source.refresh(stale)
    # Then it gets the fresh credentials without another read
    assert fresh.server_secret == ROTATED_SECRET
    assert len(store.reads) == reads


def test_a_fetch_failure_is_secret_unavailable_and_hides_the_cause() -> None:
    store = FakeSecretStore(_document())
    store.error = RuntimeError(f"AccessDenied for {SECRET_ID}: {SECRET}")
    with pytest.raises(SecretError) as raised:
        _source(store).current()
    assert raised.value.code == "SecretUnavailable"
    assert SECRET not in str(raised.value)


def _chain(error: BaseException) -> list[BaseException]:
    linked: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in linked:
        linked.append(current)
        current = current.__cause__ or current.__context__
    return linked


def test_a_fetch_failure_keeps_no_aws_error_in_the_exception_chain() -> None:
    # Given a fetch error whose text holds the secret
    store = FakeSecretStore(_document())
    store.error = RuntimeError(f"AccessDenied for {SECRET_ID}: {SECRET}")
    # When it surfaces as a SecretError
    with pytest.raises(SecretError) as raised:
        _source(store).current()
    # Then nothing chained to it (an error tracker walks __context__) carries the secret
    assert all(SECRET not in str(linked) for linked in _chain(raised.value))


def test_a_secret_that_is_not_json_keeps_its_text_out_of_the_exception_chain() -> None:
    # Given a SecretString that is not JSON (a JSONDecodeError would hold it in `.doc`)
    raw = f"ServerSecret={SECRET}"
    # When it is parsed
    with pytest.raises(SecretError) as raised:
        parse_credentials(raw)
    # Then the error has no chained decode error holding the text
    assert _chain(raised.value) == [raised.value]


def test_a_fetch_failure_during_refresh_is_secret_unavailable() -> None:
    store = FakeSecretStore(_document())
    source = _source(store)
    stale = source.current()
    store.error = ConnectionError("endpoint unreachable")
    with pytest.raises(SecretError) as raised:
        source.refresh(stale)
    assert raised.value.code == "SecretUnavailable"


def test_a_malformed_stored_secret_is_invalid_secret() -> None:
    store = FakeSecretStore(json.dumps({"AppId": APP_ID}))
    with pytest.raises(SecretError) as raised:
        _source(store).current()
    assert raised.value.code == "InvalidSecret"


def test_parse_accepts_a_binary_secret() -> None:
    assert parse_credentials(_document().encode()) == ZegoCredentials(APP_ID, SECRET)
