"""Fallback: ``with_fallback``, ``with_fallback_chain`` and the ``Fallback`` strategy."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import pytest

from stoic import Pipeline, _clock, pipeline_from_config, pipeline_to_config
from stoic._events import Event
from stoic._fallback import (
    Fallback,
    FallbackContext,
    FallbackUsed,
    with_fallback,
    with_fallback_chain,
)


def returning(value: Any) -> Callable[[], Awaitable[Any]]:
    async def func() -> Any:
        return value

    return func


def raising(exc: BaseException) -> Callable[[], Awaitable[NoReturn]]:
    async def func() -> NoReturn:
        raise exc

    return func


def must_not_run() -> Callable[[], Awaitable[NoReturn]]:
    async def func() -> NoReturn:
        pytest.fail("must not run")

    return func


async def cancel_self() -> NoReturn:
    """Raise CancelledError the way a real cancellation does."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(0)
    pytest.fail("unreachable")  # pragma: no cover


class TestWithFallback:
    """``with_fallback(primary, fallback, exceptions=(Exception,))``."""

    async def test_returns_the_primary_value_when_it_succeeds(self) -> None:
        assert await with_fallback(returning("primary"), must_not_run()) == "primary"

    async def test_returns_the_fallback_value_when_the_primary_raises(self) -> None:
        result = await with_fallback(raising(ConnectionError("down")), returning("cached"))
        assert result == "cached"

    async def test_unmatched_exception_propagates_without_calling_the_fallback(self) -> None:
        with pytest.raises(KeyError):
            await with_fallback(raising(KeyError("k")), must_not_run(), (ConnectionError,))

    async def test_exceptions_accepts_a_single_type(self) -> None:
        result = await with_fallback(raising(TimeoutError()), returning("ok"), TimeoutError)
        assert result == "ok"

    async def test_exceptions_accepts_a_predicate(self) -> None:
        def is_retryable(exc: BaseException) -> bool:
            return "retryable" in str(exc)

        assert await with_fallback(raising(OSError("retryable")), returning(1), is_retryable) == 1
        with pytest.raises(OSError, match="fatal"):
            await with_fallback(raising(OSError("fatal")), returning(1), is_retryable)

    async def test_cancellation_of_the_primary_is_never_caught(self) -> None:
        with pytest.raises(asyncio.CancelledError):
            await with_fallback(cancel_self, must_not_run(), BaseException)

    async def test_keyboard_interrupt_is_never_caught(self) -> None:
        with pytest.raises(KeyboardInterrupt):
            await with_fallback(raising(KeyboardInterrupt()), must_not_run(), BaseException)

    async def test_group_of_matching_exceptions_triggers_the_fallback(self) -> None:
        group = ExceptionGroup("many", [ConnectionError("a"), ConnectionError("b")])
        assert await with_fallback(raising(group), returning("ok"), ConnectionError) == "ok"

    async def test_group_holding_another_exception_propagates(self) -> None:
        group = ExceptionGroup("mixed", [ConnectionError("a"), ValueError("b")])
        with pytest.raises(ExceptionGroup):
            await with_fallback(raising(group), must_not_run(), ConnectionError)

    async def test_fallback_error_propagates_with_a_note_and_the_primary_as_context(
        self,
    ) -> None:
        primary_error = ConnectionError("primary down")
        with pytest.raises(LookupError) as info:
            await with_fallback(raising(primary_error), raising(LookupError("cache miss")))
        assert info.value.__context__ is primary_error
        assert info.value.__notes__ == [
            "raised by the fallback after the primary failed with ConnectionError('primary down')"
        ]

    async def test_cancellation_of_the_fallback_passes_through_without_a_note(self) -> None:
        with pytest.raises(asyncio.CancelledError) as info:
            await with_fallback(raising(ConnectionError()), cancel_self)
        assert not hasattr(info.value, "__notes__")

    async def test_primary_runs_before_the_fallback_in_virtual_time(self) -> None:
        async def slow_failure() -> str:
            await asyncio.sleep(3)
            raise ConnectionError

        async def fallback() -> float:
            return _clock.now()

        start = _clock.now()
        assert await with_fallback(slow_failure, fallback) == start + 3

    async def test_bad_exceptions_option_raises(self) -> None:
        with pytest.raises(ValueError, match="exceptions must name at least one"):
            await with_fallback(returning(1), returning(2), ())


class TestWithFallbackChain:
    """``with_fallback_chain(*funcs)`` tries each function in order."""

    async def test_returns_the_first_success(self) -> None:
        calls: list[str] = []

        def tracked(label: str, func: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                calls.append(label)
                return await func()

            return run

        result = await with_fallback_chain(
            tracked("primary", raising(ConnectionError())),
            tracked("secondary", returning("secondary")),
            tracked("cache", must_not_run()),
        )
        assert result == "secondary"
        assert calls == ["primary", "secondary"]

    async def test_single_function_result_is_returned(self) -> None:
        assert await with_fallback_chain(returning(7)) == 7

    async def test_when_all_fail_the_last_error_is_raised_with_a_note(self) -> None:
        first, second, last = ConnectionError("a"), TimeoutError("b"), LookupError("c")
        with pytest.raises(LookupError) as info:
            await with_fallback_chain(raising(first), raising(second), raising(last))
        assert info.value is last
        assert info.value.__notes__ == ["every function in the fallback chain failed (3 tried)"]

    async def test_earlier_failures_are_chained_as_context(self) -> None:
        first, second, last = ConnectionError("a"), TimeoutError("b"), LookupError("c")
        with pytest.raises(LookupError) as info:
            await with_fallback_chain(raising(first), raising(second), raising(last))
        assert info.value.__context__ is second
        assert second.__context__ is first

    async def test_no_functions_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="at least one function"):
            await with_fallback_chain()

    async def test_cancellation_stops_the_chain(self) -> None:
        with pytest.raises(asyncio.CancelledError):
            await with_fallback_chain(cancel_self, must_not_run())

    async def test_unmatched_exception_stops_the_chain(self) -> None:
        with pytest.raises(KeyError):
            await with_fallback_chain(
                raising(KeyError("k")), must_not_run(), exceptions=ConnectionError
            )

    async def test_group_aware_matching_moves_on(self) -> None:
        group = ExceptionGroup("many", [ConnectionError("a")])
        result = await with_fallback_chain(
            raising(group), returning("next"), exceptions=ConnectionError
        )
        assert result == "next"


class TestFallbackValue:
    """``Fallback(value)`` answers with a fixed value."""

    async def test_success_returns_the_calls_result(self) -> None:
        assert await Fallback("fallback").call(returning("real")) == "real"

    async def test_the_first_call_in_a_process_finds_asyncio_running(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", False)  # as in a fresh process
        assert await Fallback("fallback").call(returning("real")) == "real"
        assert _clock.asyncio_seen

    async def test_matching_exception_returns_the_value(self) -> None:
        assert await Fallback("fallback").call(raising(ConnectionError())) == "fallback"

    async def test_none_is_a_valid_fallback_value(self) -> None:
        assert await Fallback(None).call(raising(ConnectionError())) is None

    async def test_value_is_the_same_object_each_time(self) -> None:
        shared: list[int] = []
        fallback = Fallback(shared)
        assert await fallback.call(raising(OSError())) is shared
        assert await fallback.call(raising(OSError())) is shared

    async def test_unmatched_exception_propagates_untouched(self) -> None:
        error = KeyError("k")
        with pytest.raises(KeyError) as info:
            await Fallback(0, on=ConnectionError).call(raising(error))
        assert info.value is error
        assert not hasattr(error, "__notes__")

    async def test_passes_arguments_to_the_call(self) -> None:
        async def add(a: int, b: int, *, scale: int) -> int:
            return (a + b) * scale

        assert await Fallback(0).call(add, 1, 2, scale=3) == 9

    async def test_decorator_form_keeps_the_function_metadata(self) -> None:
        @Fallback([], on=ConnectionError)
        async def recommendations(user: int) -> list[str]:
            """Recommendations for a user."""
            if user < 0:
                raise ConnectionError
            return ["book"]

        assert recommendations.__name__ == "recommendations"
        assert recommendations.__doc__ == "Recommendations for a user."
        assert await recommendations(1) == ["book"]
        assert await recommendations(-1) == []


class TestFallbackHandler:
    """``Fallback(handler=...)`` computes the answer from a ``FallbackContext``."""

    async def test_sync_handler_receives_the_exception(self) -> None:
        seen: list[FallbackContext] = []
        error = ConnectionError("down")

        def handler(context: FallbackContext) -> str:
            seen.append(context)
            return "handled"

        assert await Fallback(handler=handler).call(raising(error)) == "handled"
        assert seen == [FallbackContext(exception=error, result=None)]

    async def test_async_handler_is_awaited(self) -> None:
        async def handler(context: FallbackContext) -> str:
            await asyncio.sleep(2)
            return f"after {type(context.exception).__name__}"

        start = _clock.now()
        assert await Fallback(handler=handler).call(raising(TimeoutError())) == (
            "after TimeoutError"
        )
        assert _clock.now() - start == 2

    async def test_handler_error_propagates_with_a_note_and_context(self) -> None:
        error = ConnectionError("down")

        def handler(context: FallbackContext) -> str:
            raise LookupError("no cache")

        with pytest.raises(LookupError) as info:
            await Fallback(handler=handler).call(raising(error))
        assert info.value.__context__ is error
        assert info.value.__notes__ == [
            "raised by the fallback handler after the call failed with ConnectionError('down')"
        ]

    async def test_handler_cancellation_passes_through(self) -> None:
        async def handler(context: FallbackContext) -> NoReturn:
            await cancel_self()

        with pytest.raises(asyncio.CancelledError) as info:
            await Fallback(handler=handler).call(raising(OSError()))
        assert not hasattr(info.value, "__notes__")

    def test_context_is_frozen(self) -> None:
        context = FallbackContext(exception=None, result=1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            context.result = 2  # type: ignore[misc]


class TestFallbackTriggers:
    """``on=`` (exceptions, group-aware) and ``on_result=`` decide when the fallback answers."""

    async def test_cancellation_is_never_caught_even_with_on_base_exception(self) -> None:
        events: list[Event] = []
        fallback = Fallback("no", on=BaseException, listeners=[events.append])
        with pytest.raises(asyncio.CancelledError):
            await fallback.call(cancel_self)
        assert events == []

    async def test_cancelling_the_task_during_the_call_cancels_it(self) -> None:
        task = asyncio.create_task(Fallback("no", on=BaseException).call(asyncio.sleep, 100))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    async def test_system_exit_is_never_caught(self) -> None:
        with pytest.raises(SystemExit):
            await Fallback("no", on=BaseException).call(raising(SystemExit(1)))

    async def test_group_of_connection_errors_triggers_a_connection_error_fallback(self) -> None:
        group = ExceptionGroup("io", [ConnectionError("a"), ConnectionError("b")])
        assert await Fallback("ok", on=ConnectionError).call(raising(group)) == "ok"

    async def test_group_holding_a_value_error_does_not_trigger_it(self) -> None:
        group = ExceptionGroup("io", [ConnectionError("a"), ValueError("b")])
        with pytest.raises(ExceptionGroup) as info:
            await Fallback("no", on=ConnectionError).call(raising(group))
        assert info.value is group

    async def test_group_holding_a_cancellation_is_never_caught(self) -> None:
        group = BaseExceptionGroup("c", [ConnectionError(), asyncio.CancelledError()])
        with pytest.raises(BaseExceptionGroup):
            await Fallback("no", on=BaseException).call(raising(group))

    async def test_on_accepts_a_predicate(self) -> None:
        fallback = Fallback("ok", on=lambda exc: isinstance(exc, OSError) and exc.errno == 11)
        assert await fallback.call(raising(OSError(11, "again"))) == "ok"
        with pytest.raises(OSError, match="denied"):
            await fallback.call(raising(OSError(13, "denied")))

    async def test_rejected_result_triggers_the_fallback(self) -> None:
        seen: list[FallbackContext] = []

        def handler(context: FallbackContext) -> int:
            seen.append(context)
            return 0

        fallback = Fallback(handler=handler, on_result=lambda result: result < 0)
        assert await fallback.call(returning(5)) == 5
        assert await fallback.call(returning(-1)) == 0
        assert seen == [FallbackContext(exception=None, result=-1)]

    async def test_on_none_lets_exceptions_through_but_checks_results(self) -> None:
        fallback = Fallback("empty", on=None, on_result=lambda result: result is None)
        assert await fallback.call(returning(None)) == "empty"
        with pytest.raises(ConnectionError):
            await fallback.call(raising(ConnectionError()))

    async def test_handler_error_after_a_rejected_result_has_a_note(self) -> None:
        def handler(context: FallbackContext) -> int:
            raise RuntimeError("no default")

        fallback = Fallback(handler=handler, on_result=lambda result: result is None)
        with pytest.raises(RuntimeError) as info:
            await fallback.call(returning(None))
        assert info.value.__notes__ == [
            "raised by the fallback handler after the call returned a rejected result None"
        ]


class TestFallbackEvents:
    """``FallbackUsed`` is emitted each time the fallback answers."""

    async def test_exception_fallback_emits_fallback_used(self) -> None:
        events: list[Event] = []
        error = ConnectionError("down")
        fallback = Fallback(0, name="prices", listeners=[events.append])
        await fallback.call(raising(error))
        assert events == [FallbackUsed(name="prices", exception=error, result=None)]

    async def test_result_fallback_emits_fallback_used_with_the_result(self) -> None:
        events: list[Event] = []
        fallback = Fallback(0, on_result=lambda result: result == "bad", listeners=[events.append])
        await fallback.call(returning("bad"))
        assert events == [FallbackUsed(name=None, exception=None, result="bad")]

    async def test_success_emits_nothing(self) -> None:
        events: list[Event] = []
        await Fallback(0, listeners=[events.append]).call(returning(1))
        assert events == []

    def test_fallback_used_is_a_frozen_warning(self) -> None:
        event = FallbackUsed(name=None, exception=None, result=1)
        assert event.severity.name == "WARNING"
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.result = 2  # type: ignore[misc]

    async def test_listener_that_raises_does_not_break_the_call(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        with caplog.at_level(logging.ERROR, logger="stoic"):
            result: str = await Fallback("ok", listeners=[broken]).call(raising(OSError()))
        assert result == "ok"
        assert "listener" in caplog.text


class TestFallbackValidation:
    """Bad options are rejected at construction."""

    def test_needs_a_value_or_a_handler(self) -> None:
        with pytest.raises(ValueError, match="exactly one of value= or handler=, got neither"):
            Fallback()

    def test_rejects_both_a_value_and_a_handler(self) -> None:
        with pytest.raises(ValueError, match="exactly one of value= or handler=, got both"):
            Fallback(1, handler=lambda context: 2)

    def test_handler_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match="handler must be a callable"):
            Fallback(handler=42)  # type: ignore[arg-type]

    def test_on_result_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match="on_result must be None or a predicate"):
            Fallback(0, on_result=42)  # type: ignore[arg-type]

    def test_on_must_be_exception_types_or_a_predicate(self) -> None:
        with pytest.raises(TypeError, match="on must be"):
            Fallback(0, on=42)  # type: ignore[arg-type]

    def test_on_rejects_an_empty_tuple(self) -> None:
        with pytest.raises(ValueError, match="on must name at least one exception type"):
            Fallback(0, on=())

    def test_on_none_needs_on_result(self) -> None:
        with pytest.raises(ValueError, match="on=None needs an on_result"):
            Fallback(0, on=None)

    def test_listeners_must_be_callables(self) -> None:
        with pytest.raises(TypeError, match="listeners"):
            Fallback(0, listeners=[42])  # type: ignore[list-item]

    def test_repr_shows_the_value_and_name(self) -> None:
        assert repr(Fallback([], name="recs")) == "Fallback([], name='recs')"
        assert Fallback(0, name="recs").name == "recs"
        assert "value: 'Any' = <missing>" in str(inspect.signature(Fallback))

    def test_properties_give_back_the_options_as_built(self) -> None:
        def handler(context: FallbackContext) -> int:
            return 0

        def rejected(result: Any) -> bool:
            return result is None

        fallback = Fallback(handler=handler, on=KeyError, on_result=rejected)
        assert (fallback.on, fallback.on_result, fallback.handler, fallback.value) == (
            KeyError,
            rejected,
            handler,
            None,
        )


class TestFallbackOptionsAndConfig:
    """Options and config hold what was given: a value or a handler, never a function in config."""

    def test_a_handler_fallbacks_options_hold_no_value(self) -> None:
        def handler(context: FallbackContext) -> int:
            return 0

        assert Fallback(handler=handler).options() == {
            "handler": handler,
            "on": Exception,
            "on_result": None,
            "name": None,
            "listeners": (),
        }

    def test_a_handler_cannot_be_written_to_config(self) -> None:
        with pytest.raises(ValueError, match="fallback handler is a function"):
            pipeline_to_config(Pipeline(Fallback(handler=lambda context: 0)))

    async def test_a_fallback_from_config_without_on_answers_any_exception(self) -> None:
        pipeline = pipeline_from_config({"strategies": [{"type": "fallback", "value": "queued"}]})
        assert await pipeline.call(raising(KeyError("k"))) == "queued"


class TestNotesOnASharedFallbackError:
    """A fallback that fails with one shared exception object leaves one note, however often."""

    async def test_with_fallback(self) -> None:
        from stoic import with_fallback

        shared = RuntimeError("fallback down")

        async def primary() -> int:
            raise ConnectionError

        async def fallback() -> int:
            raise shared

        for _ in range(100):
            with pytest.raises(RuntimeError):
                await with_fallback(primary, fallback)
        assert len(shared.__notes__) == 1

    async def test_with_fallback_chain(self) -> None:
        from stoic import with_fallback_chain

        shared = RuntimeError("last down")

        async def first() -> int:
            raise ConnectionError

        async def last() -> int:
            raise shared

        for _ in range(100):
            with pytest.raises(RuntimeError):
                await with_fallback_chain(first, last)
        assert len(shared.__notes__) == 1

    async def test_a_fallback_handler(self) -> None:
        from stoic import Fallback

        shared = RuntimeError("handler down")

        def handler(context: Any) -> int:
            raise shared

        async def primary() -> int:
            raise ConnectionError

        policy = Fallback(handler=handler)
        for _ in range(100):
            with pytest.raises(RuntimeError):
                await policy.call(primary)
        assert len(shared.__notes__) == 1
