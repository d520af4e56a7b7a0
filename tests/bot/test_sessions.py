"""Widget session tokens: issued, renewed, and refused when forged, expired or malformed."""

from __future__ import annotations

import pytest

from bot.sessions import BadSession, SessionSigner

SECRET = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_issued_token_verifies_to_the_same_session() -> None:
    signer = SessionSigner(SECRET, ttl_s=60)
    session = signer.issue()
    assert signer.verify(session.token).id == session.id


def test_renewal_keeps_the_session_id_and_moves_the_expiry() -> None:
    clock = Clock(1000.0)
    signer = SessionSigner(SECRET, ttl_s=60, clock=clock)
    first = signer.issue()
    clock.now += 30
    renewed = signer.issue(first.id)
    assert renewed.id == first.id and renewed.expires == first.expires + 30


def test_expired_token_is_refused() -> None:
    clock = Clock(1000.0)
    signer = SessionSigner(SECRET, ttl_s=60, clock=clock)
    token = signer.issue().token
    clock.now += 61
    with pytest.raises(BadSession, match="expired"):
        signer.verify(token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "other" + t,  # session id changed
        lambda t: t.split(".")[0] + ".9999999999." + t.split(".")[2],  # expiry pushed out
        lambda t: "",
        lambda t: "a.b",
        lambda t: "x" * 5000,
        lambda t: t + ".extra",
    ],
)
def test_forged_or_malformed_tokens_are_refused(mangle: object) -> None:
    signer = SessionSigner(SECRET, ttl_s=60)
    token = signer.issue().token
    with pytest.raises(BadSession):
        signer.verify(mangle(token))  # type: ignore[operator]


def test_a_token_from_another_secret_is_refused() -> None:
    token = SessionSigner(b"another secret of enough length!", ttl_s=60).issue().token
    with pytest.raises(BadSession):
        SessionSigner(SECRET, ttl_s=60).verify(token)

