"""Retry: run a call again when it fails, with backoff, a deadline and server hints.

``policy`` holds the strategy and two of its drivers (``call``, the decorator); ``attempts``
the third, the ``async for`` loop; ``plan`` the synchronous decision core they share;
``events`` what it reports; ``hints`` ``retry_after_hint``; ``budget`` the retry budgets
that bound retries to a share of the calls; ``seed`` the founding document's API.
"""

from stoic._retry.attempts import Attempt
from stoic._retry.budget import RetryBudget, TokenRetryBudget
from stoic._retry.events import AttemptCompleted, RetryGaveUp, RetryScheduled
from stoic._retry.factory import retry
from stoic._retry.hints import retry_after_hint
from stoic._retry.policy import Retry
from stoic._retry.seed import async_retry, retry_with_backoff

__all__ = [
    "Attempt",
    "AttemptCompleted",
    "Retry",
    "RetryBudget",
    "RetryGaveUp",
    "RetryScheduled",
    "TokenRetryBudget",
    "async_retry",
    "retry",
    "retry_after_hint",
    "retry_with_backoff",
]
