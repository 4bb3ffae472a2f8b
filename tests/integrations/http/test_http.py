"""The HTTP integrations' shared rules: transient statuses, idempotency, Retry-After."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from stoic.integrations.http import HttpPolicy, TransientResponse, retry_after_seconds


class TestHttpPolicy:
    def test_the_defaults_are_the_documented_ones(self) -> None:
        policy = HttpPolicy()
        assert policy.transient_statuses == {408, 429, 500, 502, 503, 504}
        assert policy.idempotent_methods == {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
        assert policy.idempotency_header == "Idempotency-Key"
        assert policy.max_retry_after == 60.0

    @pytest.mark.parametrize("method", ["GET", "get", "PUT", "DELETE", "HEAD", "OPTIONS"])
    def test_idempotent_methods_may_be_sent_again(self, method: str) -> None:
        assert HttpPolicy().may_send_again(method, has_idempotency_key=False)

    @pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT"])
    def test_other_methods_only_with_an_idempotency_key(self, method: str) -> None:
        assert not HttpPolicy().may_send_again(method, has_idempotency_key=False)
        assert HttpPolicy().may_send_again(method, has_idempotency_key=True)

    @pytest.mark.parametrize(
        ("options", "error", "match"),
        [
            ({"transient_statuses": [503, 99]}, ValueError, "100-599"),
            ({"transient_statuses": [503, True]}, TypeError, "only int"),
            ({"transient_statuses": "503"}, TypeError, "a set of int"),
            ({"idempotent_methods": [1]}, TypeError, "only str"),
            ({"idempotency_header": ""}, TypeError, "a non-empty str"),
            ({"max_retry_after": -1.0}, ValueError, "max_retry_after"),
        ],
    )
    def test_bad_options_are_refused_naming_the_parameter(
        self, options: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        with pytest.raises(error, match=match):
            HttpPolicy(**options)

    def test_options_are_frozen_sets(self) -> None:
        policy = HttpPolicy(transient_statuses=[503], idempotent_methods=["GET"])
        assert policy.transient_statuses == frozenset({503})
        with pytest.raises(AttributeError):
            policy.max_retry_after = 1.0  # type: ignore[misc]


class TestRetryAfterSeconds:
    def test_delta_seconds(self) -> None:
        assert retry_after_seconds("120") == 120.0
        assert retry_after_seconds(" 0 ") == 0.0

    def test_an_http_date_is_read_against_the_responses_date(self) -> None:
        # The client's clock (now) is an hour off: the server's Date decides.
        sent = email.utils.formatdate(1_700_000_000, usegmt=True)
        later = email.utils.formatdate(1_700_000_030, usegmt=True)
        assert retry_after_seconds(later, sent, now=lambda: 1_700_003_600.0) == 30.0

    def test_an_http_date_without_a_date_header_is_read_against_now(self) -> None:
        later = email.utils.formatdate(1_700_000_030, usegmt=True)
        assert retry_after_seconds(later, now=lambda: 1_700_000_000.0) == 30.0

    def test_a_date_in_the_past_asks_for_no_wait(self) -> None:
        earlier = email.utils.formatdate(1_600_000_000, usegmt=True)
        assert retry_after_seconds(earlier, now=lambda: 1_700_000_000.0) == 0.0

    def test_a_date_without_a_zone_is_gmt(self) -> None:
        assert retry_after_seconds(
            "Tue, 14 Nov 2023 22:13:50 -0000", now=lambda: 1_700_000_000.0
        ) == pytest.approx(30.0)

    def test_a_number_too_large_for_a_float_is_too_long_to_wait_for(self) -> None:
        assert retry_after_seconds("9" * 400) == float("inf")

    @pytest.mark.parametrize(
        "value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2023", "\u00b2", "1\u00b9"]
    )
    def test_anything_unreadable_asks_for_nothing(self, value: str | None) -> None:
        assert retry_after_seconds(value) is None

    def test_an_unreadable_date_header_falls_back_to_now(self) -> None:
        later = email.utils.formatdate(1_700_000_030, usegmt=True)
        assert retry_after_seconds(later, "garbage", now=lambda: 1_700_000_000.0) == 30.0


def test_a_transient_response_carries_what_was_asked_of_whom() -> None:
    response = object()
    exc = TransientResponse(response, 503, "GET", "api.example.com", 1.5)
    assert (exc.response, exc.status, exc.method, exc.host, exc.retry_after) == (
        response,
        503,
        "GET",
        "api.example.com",
        1.5,
    )
    assert str(exc) == "503 from GET api.example.com"
