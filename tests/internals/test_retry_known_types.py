"""Internals of retry: the memo of exception types ``on`` matches whatever the instance.

Kept apart from the behaviour tests (tests/retry/): these read ``Retry._known``, which a
rewrite may drop; what they also check, that remembering never changes which exceptions are
retried, is behaviour.
"""

from __future__ import annotations

import asyncio

import pytest

from stoic._retry import Retry
from stoic.backoff import constant
from tests.forms import forms_of
from tests.retry.test_retry import Flaky
from tests.timeline import clock_origin, elapsed  # noqa: F401  (autouse fixture)

# The call, the decorator and the attempt loop all learn into the memo.
EVERY_FORM = forms_of(Retry, "decorator", "attempt loop")


class TestKnownTypes:
    """Remembered exception types never change which exceptions are retried."""

    async def test_plain_types_are_remembered(self) -> None:
        policy = Retry(on=OSError, backoff=constant(0))
        await policy.call(Flaky(ConnectionError(), TimeoutError(), value=1))
        assert set(policy._known) == {ConnectionError, TimeoutError}
        with pytest.raises(ValueError):
            await policy.call(Flaky(ValueError()))
        assert ValueError not in policy._known

    async def test_predicates_are_asked_every_time(self) -> None:
        policy = Retry(on=lambda exc: "retry" in str(exc), backoff=constant(0))
        assert await policy.call(Flaky(ConnectionError("retry"), value=1)) == 1
        with pytest.raises(ConnectionError):
            await policy.call(Flaky(ConnectionError("stop")))
        assert not policy._known

    async def test_a_class_with_its_own_isinstance_is_asked_every_time(self) -> None:
        import abc

        class Transient(Exception, metaclass=abc.ABCMeta):
            pass

        Transient.register(ConnectionError)
        policy = Retry(on=Transient, backoff=constant(0))
        assert await policy.call(Flaky(ConnectionError(), value=1)) == 1
        assert not policy._known

    async def test_an_exception_posing_as_cancellation_is_never_remembered(self) -> None:
        class Shifty(ConnectionError):
            def __init__(self, cancelled: bool) -> None:
                super().__init__()
                self.cancelled = cancelled

            @property  # type: ignore[misc]
            def __class__(self) -> type:
                return asyncio.CancelledError if self.cancelled else ConnectionError

        policy = Retry(on=ConnectionError, backoff=constant(0), attempts=5)
        flaky = Flaky(Shifty(False), Shifty(True))
        with pytest.raises(ConnectionError) as info:
            await policy.call(flaky)
        assert info.value.cancelled  # type: ignore[attr-defined]
        assert len(flaky.times) == 2  # the "cancelled" one was not retried
        assert not policy._known

    async def test_groups_are_never_remembered(self) -> None:
        policy = Retry(on=ConnectionError, backoff=constant(0))
        group = ExceptionGroup("g", [ConnectionError()])
        assert await policy.call(Flaky(group, value=1)) == 1
        with pytest.raises(ExceptionGroup):
            await policy.call(Flaky(ExceptionGroup("g", [ValueError()])))
        assert not policy._known

    async def test_a_group_holding_cancellation_after_a_retried_group(self) -> None:
        class Custom(BaseException):
            pass

        policy = Retry(on=BaseException, backoff=constant(0), attempts=5)
        cancelled = BaseExceptionGroup("g", [asyncio.CancelledError()])
        flaky = Flaky(BaseExceptionGroup("g", [Custom()]), cancelled)
        with pytest.raises(BaseExceptionGroup) as info:
            await policy.call(flaky)
        assert info.value is cancelled
        assert len(flaky.times) == 2
        assert BaseExceptionGroup not in policy._known

    async def test_the_memo_stays_small(self) -> None:
        policy = Retry(on=ConnectionError, backoff=constant(0))
        kinds = [type(f"E{i}", (ConnectionError,), {}) for i in range(50)]
        for kind in kinds:
            assert await policy.call(Flaky(kind(), value=1)) == 1
        assert len(policy._known) == 32
