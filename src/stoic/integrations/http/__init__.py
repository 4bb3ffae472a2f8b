"""What the HTTP integrations share: which responses and requests may be retried, and when.

Used by ``stoic.integrations.httpx`` and ``stoic.integrations.aiohttp``; no HTTP library is
imported here. The defaults, all options of ``HttpPolicy``:

=======================  ==============================================  ====================
option                   default                                         why
=======================  ==============================================  ====================
``transient_statuses``   408, 429, 500, 502, 503, 504                    worth another try;
                                                                         501 and 505 are not
``idempotent_methods``   GET, HEAD, OPTIONS, TRACE, PUT, DELETE          RFC 9110 9.2.2
``idempotency_header``   ``Idempotency-Key``                             a POST or PATCH that
                                                                         carries it may be
                                                                         sent again
``max_retry_after``      60 s                                            a longer
                                                                         ``Retry-After`` is
                                                                         not waited for
=======================  ==============================================  ====================

A response whose status is transient is raised inside the pipeline as ``TransientResponse``
(so the retry and the breaker see it); when the retry gives up, the transport hands the
caller that last response, as the server sent it. Any other status, 4xx included, is a
result: never retried, never a breaker failure.
"""

from stoic.integrations.http._classify import ClientErrors, is_failure, retryable
from stoic.integrations.http._pipeline import http_pipeline
from stoic.integrations.http._policy import HttpPolicy, TransientResponse, retry_after_seconds

__all__ = [
    "ClientErrors",
    "HttpPolicy",
    "TransientResponse",
    "http_pipeline",
    "is_failure",
    "retry_after_seconds",
    "retryable",
]
