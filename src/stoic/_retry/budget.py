"""Retry budgets: retries may add at most a share of the calls, so an outage is not multiplied.

A retry policy alone multiplies load by its attempts exactly when the dependency is least able
to take it: three retries turn a dead service's traffic into four times as much. A budget,
shared by every call site that passes it (``Retry(budget=...)``), bounds the retries to a share
of the calls made:

- ``RetryBudget(ratio=0.2, min_per_second=10.0, ttl=10.0)``, Finagle's semantics: each call
  deposits, each retry withdraws ``1 / ratio`` as much, both expire after ``ttl`` seconds, and
  a reserve of ``min_per_second * ttl`` retries lets a quiet client retry at all. The counts
  are exact integers (a ratio of 0.3 gives 30% retries, not 33%).
- ``RetryBudget.tokens(max_tokens=100, token_ratio=0.1)``, gRPC's retry throttling: a failed
  attempt takes a token, a success gives back ``token_ratio`` of one, and retries stop while
  half of ``max_tokens`` or fewer are left.

When the budget is spent the retry gives up at once: the caller's real error is raised with a
note, ``RetryGaveUp`` reports ``reason="budget"``, and the error carries ``retry_after`` (the
seconds until the budget holds a retry again, when it has no such attribute of its own) so an
outer loop backs off instead of spinning. Only a budget that refills with time has one: a
Finagle budget with a reserve; not one without (only new calls refill it), nor the token
budget (only successes do). A retry cancelled during its wait keeps its withdrawal spent,
as Finagle's does.
"""

from __future__ import annotations

from fractions import Fraction

from stoic import _clock, _validate
from stoic._slices import SLICES, Slices

__all__ = ["AnyRetryBudget", "BudgetWindow", "RetryBudget", "TokenRetryBudget"]


class BudgetWindow:
    """A retry budget's state (its decision core): deposits and withdrawals of the last
    ``ttl``, in integer units (``Slices``: ten slices of ``ttl / 10``).

    ``deposit_units`` per call and ``withdrawal_units`` per retry are the ratio's numerator
    and denominator, so the share is exact; ``reserve`` units are always there.
    """

    __slots__ = ("deposit_units", "reserve", "slices", "withdrawal_units")

    def __init__(
        self, deposit_units: int, withdrawal_units: int, reserve: int, slice_ns: int
    ) -> None:
        self.deposit_units = deposit_units
        self.withdrawal_units = withdrawal_units
        self.reserve = reserve
        self.slices = Slices(slice_ns, 1)

    @property
    def total(self) -> int:
        """Deposits less withdrawals over the window."""
        return self.slices.totals[0]

    def deposit(self, now_ns: int) -> None:
        """One call was made."""
        slices = self.slices
        slices.add(slices.advance(now_ns), 0, self.deposit_units)

    def try_withdraw(self, now_ns: int) -> bool:
        """Take one retry's worth if the budget holds it."""
        slices = self.slices
        slot = slices.advance(now_ns)
        cost = self.withdrawal_units
        if self.reserve + slices.totals[0] < cost:
            return False
        slices.add(slot, 0, -cost)
        return True

    def available(self, now_ns: int) -> int:
        """How many retries the budget holds now."""
        self.slices.advance(now_ns)
        return max(0, (self.reserve + self.total) // self.withdrawal_units)

    def retry_after_ns(self, now_ns: int) -> int | None:
        """Nanoseconds until the budget holds a retry again without new calls: the first
        slice boundary after which what is left (the reserve, and the amounts that have not
        expired) covers a withdrawal; ``None`` when only new calls can refill it."""
        slices = self.slices
        slices.advance(now_ns)
        cost = self.withdrawal_units
        left = self.reserve + slices.totals[0]
        if left >= cost:
            return 0
        start = slices.index * slices.slice_ns
        for after, amount in slices.oldest_first(0):  # the oldest expires at the next boundary
            left -= amount
            if left >= cost:
                return start + after - now_ns
        return None


class RetryBudget:
    """Retries may add at most ``ratio`` of the calls made over the last ``ttl`` seconds,
    plus ``min_per_second`` retries a second (Finagle's retry budget).

    - ``ratio``: retries per call (a number in [0, 10]; 0.2: a retry for every five calls).
    - ``min_per_second``: retries a second allowed whatever the calls (>= 0), so a client that
      makes few calls can still retry; the reserve is ``min_per_second * ttl``.
    - ``ttl``: seconds a call's deposit and a retry's withdrawal count (in [1, 60]).
    - ``name``: for ``repr`` and statistics.

    Share one budget between the call sites that call the same dependency. Counts are kept
    for one event loop (from several threads they stay close, not exact).
    """

    __slots__ = ("_clock", "_min_per_second", "_name", "_ratio", "_ttl", "_window")

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        ttl: float = 10.0,
        *,
        name: str | None = None,
    ) -> None:
        ratio = _validate.number(ratio, "ratio", minimum=0.0, maximum=10.0)
        min_per_second = _validate.number(min_per_second, "min_per_second", minimum=0.0)
        ttl = _validate.seconds(ttl, "ttl", minimum=1.0, maximum=60.0)
        self._ratio = ratio
        self._min_per_second = min_per_second
        self._ttl = ttl
        self._name = _validate.name(name)
        # Exact: the ratio as the decimal it was written as (0.3 is 3/10, not the binary
        # float below it): a call deposits the numerator, a retry withdraws the denominator
        # (Python's integers do not overflow, however many digits the ratio has).
        share = Fraction(str(ratio))
        deposit, withdrawal = share.numerator, share.denominator
        reserve = Fraction(str(min_per_second)) * Fraction(str(ttl)) * withdrawal
        self._window = BudgetWindow(
            deposit, withdrawal, int(reserve), int(ttl * _clock.NS) // SLICES
        )
        self._clock = _clock

    def __repr__(self) -> str:
        name = "" if self._name is None else f", name={self._name!r}"
        return (
            f"RetryBudget(ratio={self._ratio!r}, min_per_second={self._min_per_second!r}, "
            f"ttl={self._ttl!r}{name})"
        )

    @classmethod
    def tokens(
        cls, max_tokens: float = 100.0, token_ratio: float = 0.1, *, name: str | None = None
    ) -> TokenRetryBudget:
        """gRPC's retry throttling: a failed attempt takes a token, a success gives back
        ``token_ratio`` of one (up to ``max_tokens``); retries stop while at most half of
        ``max_tokens`` are left."""
        return TokenRetryBudget(max_tokens, token_ratio, name=name)

    @property
    def ratio(self) -> float:
        return self._ratio

    @property
    def min_per_second(self) -> float:
        return self._min_per_second

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def name(self) -> str | None:
        return self._name

    def available(self) -> int:
        """How many retries the budget would allow now."""
        return self._window.available(self._clock.now_ns())

    # -- what the retry's drivers call -----------------------------------------------------

    def deposit(self) -> None:
        """A call was made (each call through a retry that has this budget, once)."""
        self._window.deposit(self._clock.now_ns())

    def failed(self) -> None:
        """An attempt failed in a way its retry would retry (the token variant counts it)."""

    def succeeded(self) -> None:
        """An attempt succeeded (the token variant counts it)."""

    def try_withdraw(self) -> bool:
        """Whether one more retry may go ahead; it is counted when it may."""
        return self._window.try_withdraw(self._clock.now_ns())

    def retry_after(self) -> float | None:
        """Seconds until the budget holds a retry again without new calls (0 when it holds
        one now); ``None`` when only new calls can refill it (no reserve)."""
        after = self._window.retry_after_ns(self._clock.now_ns())
        return None if after is None else after / _clock.NS


class TokenRetryBudget:
    """gRPC's retry throttling, made by ``RetryBudget.tokens``; a ``Retry(budget=)`` as a
    ``RetryBudget`` is. Counts in thousandths of a token, as gRPC does, so ``token_ratio``
    is kept to three decimals (further ones are dropped)."""

    __slots__ = ("_max", "_max_tokens", "_name", "_token_ratio", "_tokens", "_units")

    def __init__(
        self, max_tokens: float = 100.0, token_ratio: float = 0.1, *, name: str | None = None
    ) -> None:
        # gRPC's ranges: (0, 1000] tokens, a ratio above 0 (kept to three decimals).
        max_tokens = _validate.number(
            max_tokens, "max_tokens", minimum=0.0, maximum=1000.0, open_below=True
        )
        token_ratio = _validate.number(token_ratio, "token_ratio", minimum=0.0, open_below=True)
        for value, parameter in ((max_tokens, "max_tokens"), (token_ratio, "token_ratio")):
            if int(value * 1000) == 0:
                raise ValueError(f"{parameter} must be at least 0.001, got {value!r}")
        self._max_tokens = max_tokens
        self._token_ratio = token_ratio
        self._name = _validate.name(name)
        self._max = int(max_tokens * 1000)
        self._units = int(token_ratio * 1000)
        self._tokens = self._max

    def __repr__(self) -> str:
        name = "" if self._name is None else f", name={self._name!r}"
        return (
            f"RetryBudget.tokens(max_tokens={self._max_tokens!r}, "
            f"token_ratio={self._token_ratio!r}{name})"
        )

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def max_tokens(self) -> float:
        return self._max_tokens

    @property
    def token_ratio(self) -> float:
        return self._token_ratio

    @property
    def tokens_left(self) -> float:
        """The tokens left now."""
        return self._tokens / 1000

    def available(self) -> int:
        """How many more failed attempts may be retried before retries stop (successes
        in between give tokens back)."""
        # A failure is retried while the tokens it leaves are above half the maximum.
        above = 2 * self._tokens - self._max  # in half-thousandths
        return max(0, (above - 1) // 2000)

    def deposit(self) -> None:
        pass  # calls are not counted: outcomes are

    def failed(self) -> None:
        self._tokens = max(0, self._tokens - 1000)

    def succeeded(self) -> None:
        tokens = self._tokens + self._units
        self._tokens = tokens if tokens < self._max else self._max

    def try_withdraw(self) -> bool:
        return self._tokens * 2 > self._max

    def retry_after(self) -> float | None:
        """``None``: only successes refill it, so no time says when."""
        return None


#: What ``Retry(budget=)`` takes: either kind of budget.
AnyRetryBudget = RetryBudget | TokenRetryBudget
