"""Retry budgets: retries bounded to a share of the calls (Finagle) or by tokens (gRPC)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stoic import Pipeline, RetryBudget, TokenRetryBudget
from stoic._events import Event
from stoic._retry import Retry, RetryGaveUp
from stoic.backoff import constant
from stoic.exceptions import ResultRejected
from tests.forms import around_retry, forms_of, sees_results

# Every async test runs with ``.call`` routed through each form (tests/forms.py).
EVERY_FORM = forms_of(Retry, "decorator", "attempt loop", "pipeline", pipeline=around_retry)


class FailsOnce:
    """Each call's first attempt fails; its retry succeeds. Counts attempts."""

    def __init__(self) -> None:
        self.attempts = 0
        self._fresh = True

    async def __call__(self) -> str:
        self.attempts += 1
        if self._fresh:
            self._fresh = False
            raise ConnectionError("reset")
        self._fresh = True
        return "ok"


async def calls(policy: Retry, fn: Any, n: int) -> tuple[int, list[BaseException]]:
    """``n`` calls through ``policy``; how many succeeded and what the others raised."""
    succeeded, failed = 0, []
    for _ in range(n):
        try:
            await policy.call(fn)
        except ConnectionError as exc:
            failed.append(exc)
            fn._fresh = True  # the next call starts afresh
        else:
            succeeded += 1
    return succeeded, failed


def retrying(budget: RetryBudget, **options: Any) -> Retry:
    return Retry(attempts=2, on=ConnectionError, backoff=constant(0), budget=budget, **options)


class TestShareOfCalls:
    async def test_a_ratio_of_three_tenths_allows_exactly_thirty_percent_retries(self) -> None:
        fn = FailsOnce()
        succeeded, _ = await calls(retrying(RetryBudget(0.3, min_per_second=0)), fn, 1000)
        assert succeeded == 300  # 300 retries for 1,000 calls, not 333
        assert fn.attempts - 1000 == 300

    async def test_the_reserve_lets_a_quiet_client_retry(self) -> None:
        budget = RetryBudget(0.0, min_per_second=1.0, ttl=10.0)
        fn = FailsOnce()
        succeeded, _ = await calls(retrying(budget), fn, 30)
        assert succeeded == 10  # min_per_second * ttl
        assert budget.available() == 0

    async def test_withdrawals_expire_after_ttl(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.5, ttl=4.0)
        fn = FailsOnce()
        assert (await calls(retrying(budget), fn, 5))[0] == 2
        await asyncio.sleep(4.0)
        assert budget.available() == 2
        assert (await calls(retrying(budget), fn, 5))[0] == 2

    async def test_deposits_expire_after_ttl(self) -> None:
        budget = RetryBudget(0.5, min_per_second=0)
        for _ in range(10):
            budget.deposit()
        assert budget.available() == 5
        await asyncio.sleep(10.0)
        assert budget.available() == 0

    async def test_one_budget_is_shared_by_every_call_site_given_it(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.3, ttl=10.0)
        first, second = retrying(budget), retrying(budget, name="other")
        fn = FailsOnce()
        assert (await calls(first, fn, 2))[0] == 2
        assert (await calls(second, fn, 2))[0] == 1  # three retries between the two
        assert budget.available() == 0


class TestWhenSpent:
    async def test_the_real_error_is_raised_with_a_note_and_a_retry_after(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)  # one retry
        fn = FailsOnce()
        _, failed = await calls(retrying(budget), fn, 2)
        (error,) = failed
        assert str(error) == "reset"
        assert any("the retry budget is spent" in note for note in error.__notes__)
        # The one retry was withdrawn a moment ago: it expires, and the reserve holds a
        # retry again, a whole ttl after it (no sooner).
        assert 9.0 < error.retry_after <= 10.0  # type: ignore[attr-defined]
        await asyncio.sleep(error.retry_after)  # type: ignore[attr-defined]
        assert budget.available() == 1

    async def test_without_a_reserve_only_new_calls_refill_it(self) -> None:
        policy = retrying(RetryBudget(0.5, min_per_second=0))
        with pytest.raises(ConnectionError) as info:
            await policy.call(FailsOnce())
        assert not hasattr(info.value, "retry_after")

    async def test_a_retry_after_given_earlier_is_brought_up_to_date(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)
        error = ConnectionError("the same error, raised again")

        async def fails() -> None:
            raise error

        policy = retrying(budget)
        await calls(policy, FailsOnce(), 1)  # spends the one retry
        with pytest.raises(ConnectionError):
            await policy.call(fails)
        first = error.retry_after  # type: ignore[attr-defined]
        await asyncio.sleep(4.0)
        with pytest.raises(ConnectionError):
            await policy.call(fails)
        assert error.retry_after == pytest.approx(first - 4.0)  # type: ignore[attr-defined]

    @sees_results
    async def test_a_rejected_result_withdraws_and_carries_a_retry_after(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)
        policy = Retry(
            attempts=3,
            on_result=lambda status: status == "pending",
            backoff=constant(0),
            budget=budget,
        )

        async def pending() -> str:
            return "pending"

        with pytest.raises(ResultRejected) as info:
            await policy.call(pending)
        assert info.value.attempts == 2  # one retry, then the budget
        assert info.value.retry_after > 9.0  # type: ignore[attr-defined]

    async def test_a_deadline_give_up_spends_nothing(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)
        policy = Retry(attempts=3, on=ConnectionError, backoff=constant(5.0), deadline=1.0)
        policy = policy.with_(budget=budget)
        with pytest.raises(ConnectionError):
            await policy.call(FailsOnce())
        assert budget.available() == 1

    async def test_an_error_that_takes_no_attribute_still_propagates(self) -> None:
        class Slotted(ConnectionError):
            def __setattr__(self, name: str, value: object) -> None:
                if name == "retry_after":  # as a class with a read-only property would
                    raise AttributeError(name)
                super().__setattr__(name, value)

        async def fails() -> None:
            raise Slotted

        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)
        await calls(retrying(budget), FailsOnce(), 1)  # spends the one retry
        with pytest.raises(Slotted) as info:
            await retrying(budget).call(fails)
        assert not hasattr(info.value, "retry_after")

    async def test_an_errors_own_retry_after_is_kept(self) -> None:
        class Throttled(ConnectionError):
            retry_after = 30.0

        async def throttled() -> None:
            raise Throttled

        policy = retrying(RetryBudget(0.0, min_per_second=0))
        with pytest.raises(Throttled) as info:
            await policy.call(throttled)
        assert info.value.retry_after == 30.0

    @pytest.mark.forms("call", "decorator", "pipeline")
    async def test_giving_up_is_reported_with_reason_budget(self) -> None:
        seen: list[Event] = []
        policy = retrying(RetryBudget(0.0, min_per_second=0), listeners=[seen.append])
        with pytest.raises(ConnectionError):
            await policy.call(FailsOnce())
        (gave_up,) = [event for event in seen if isinstance(event, RetryGaveUp)]
        assert gave_up.reason == "budget"
        assert gave_up.attempt == 1

    async def test_a_retry_that_would_not_run_spends_nothing(self) -> None:
        budget = RetryBudget(0.0, min_per_second=0.1, ttl=10.0)  # one retry
        one_attempt = Retry(attempts=1, on=ConnectionError, budget=budget)
        with pytest.raises(ConnectionError):
            await one_attempt.call(FailsOnce())
        assert budget.available() == 1

    async def test_a_cancelled_call_counts_only_its_deposit(self) -> None:
        budget = RetryBudget(1.0, min_per_second=0)

        async def hangs() -> None:
            await asyncio.sleep(60)

        task = asyncio.create_task(retrying(budget).call(hangs))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert budget.available() == 1  # the call's deposit; no withdrawal

    async def test_cancellation_is_not_counted(self) -> None:
        budget = RetryBudget.tokens(max_tokens=4, token_ratio=0.5)

        async def hangs() -> None:
            await asyncio.sleep(60)

        task = asyncio.create_task(retrying(budget).call(hangs))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert budget.tokens_left == 4


class TestTokens:
    async def test_retries_stop_at_half_the_tokens(self) -> None:
        budget = RetryBudget.tokens(max_tokens=10, token_ratio=0.1)
        policy = Retry(attempts=100, on=ConnectionError, backoff=constant(0), budget=budget)
        attempts = 0

        async def down() -> None:
            nonlocal attempts
            attempts += 1
            raise ConnectionError

        with pytest.raises(ConnectionError) as info:
            await policy.call(down)
        assert attempts == 5  # 10 -> 5 tokens: the fifth failure leaves half, not above it
        assert any("the retry budget is spent" in note for note in info.value.__notes__)
        assert not hasattr(info.value, "retry_after")  # only successes refill it

    async def test_successes_give_tokens_back(self) -> None:
        budget = RetryBudget.tokens(max_tokens=10, token_ratio=0.5)
        for _ in range(5):
            budget.failed()
        assert budget.tokens_left == 5
        assert not budget.try_withdraw()
        await retrying(budget).call(_ok)  # one success: half a token back
        assert budget.tokens_left == 5.5
        assert budget.try_withdraw()
        assert budget.available() == 0  # the next failure leaves 4.5: no retry after it

    def test_tokens_never_pass_the_maximum(self) -> None:
        budget = RetryBudget.tokens(max_tokens=3, token_ratio=1.0)
        budget.succeeded()
        assert budget.tokens_left == 3
        assert budget.available() == 1  # 3 -> 2 tokens, above 1.5: retried; 2 -> 1: not


async def _ok() -> str:
    return "ok"


class TestInPipelines:
    async def test_a_pipeline_with_a_budgeted_retry_counts_every_call(self) -> None:
        budget = RetryBudget(0.5, min_per_second=0)
        pipeline = Pipeline(retrying(budget), name="orders")
        decorated = pipeline(_ok)
        for _ in range(4):
            assert await decorated() == "ok"
        assert budget.available() == 2

    def test_config_cannot_express_a_budget(self) -> None:
        from stoic import pipeline_to_config

        with pytest.raises(ValueError, match="retry budget is an object"):
            pipeline_to_config(Pipeline(retrying(RetryBudget())))


class TestConstruction:
    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"ratio": -0.1}, r"ratio must be a finite number >= 0 and <= 10"),
            ({"ratio": 11}, r"ratio must be"),
            ({"ratio": True}, r"ratio must be"),
            ({"min_per_second": -1}, r"min_per_second must be a finite number >= 0"),
            ({"ttl": 0.5}, r"ttl must be a finite number of seconds >= 1 and <= 60"),
            ({"ttl": 61}, r"ttl must be"),
        ],
    )
    def test_bad_options_are_refused_naming_the_range(
        self, options: dict[str, Any], match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            RetryBudget(**options)

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"max_tokens": 0}, r"max_tokens must be a finite number > 0 and <= 1000"),
            ({"max_tokens": 1001}, r"max_tokens must be"),
            ({"token_ratio": 0}, r"token_ratio must be a finite number > 0"),
            ({"token_ratio": 0.0001}, r"token_ratio must be at least 0.001"),
            ({"max_tokens": 0.0004}, r"max_tokens must be at least 0.001"),
        ],
    )
    def test_bad_token_options_are_refused(self, options: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            RetryBudget.tokens(**options)

    def test_a_retry_takes_a_budget_instance(self) -> None:
        with pytest.raises(TypeError, match="budget"):
            Retry(budget=RetryBudget)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="budget"):
            Retry(budget=0.2)  # type: ignore[arg-type]

    def test_the_token_variant_is_a_budget_of_its_own(self) -> None:
        budget = RetryBudget.tokens(50, 0.25, name="grpc")
        assert isinstance(budget, TokenRetryBudget)
        assert not isinstance(budget, RetryBudget)  # no ratio, reserve or ttl
        assert budget.name == "grpc"
        assert Retry(budget=budget).budget is budget
        assert repr(budget) == "RetryBudget.tokens(max_tokens=50.0, token_ratio=0.25, name='grpc')"
        assert (budget.max_tokens, budget.token_ratio) == (50, 0.25)

    def test_repr_and_options(self) -> None:
        budget = RetryBudget(0.3, 2.0, 5.0, name="orders")
        assert repr(budget) == "RetryBudget(ratio=0.3, min_per_second=2.0, ttl=5.0, name='orders')"
        assert (budget.ratio, budget.min_per_second, budget.ttl, budget.name) == (
            0.3,
            2.0,
            5.0,
            "orders",
        )
        assert Retry(budget=budget).options()["budget"] is budget
