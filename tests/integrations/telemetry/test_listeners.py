"""Built-in listeners against the real libraries (stdlib logging, OpenTelemetry SDK,
prometheus_client, structlog), and the missing-extra error."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from stoic._pipeline import Pipeline
from stoic._retry import Retry
from stoic.backoff import constant
from stoic.integrations import (
    LoggingListener,
    OpenTelemetryListener,
    PrometheusListener,
    StructlogListener,
)


def flaky(failures: int) -> Any:
    state = {"left": failures}

    async def call() -> str:
        if state["left"]:
            state["left"] -= 1
            raise ConnectionError("reset")
        return "ok"

    return call


async def run_pipeline(listener: Any) -> None:
    pipeline = Pipeline(
        Retry(attempts=3, backoff=constant(0.5), name="retry"),
        name="payments",
        listeners=[listener],
    )
    assert await pipeline.call(flaky(1)) == "ok"


class TestLoggingListener:
    """Stdlib logging, structured ``extra``, levels from severity."""

    async def test_levels_and_extra(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.DEBUG, logger="stoic"):
            await run_pipeline(LoggingListener())
        records = {record.stoic_event: record for record in caplog.records}  # type: ignore[attr-defined]
        scheduled = records["RetryScheduled"]
        assert scheduled.levelno == logging.WARNING
        assert scheduled.stoic_pipeline == "payments"  # type: ignore[attr-defined]
        assert scheduled.stoic_strategy == "retry"  # type: ignore[attr-defined]
        assert scheduled.stoic_fields["delay"] == 0.5  # type: ignore[attr-defined]
        assert "RetryScheduled [payments/retry]" in scheduled.getMessage()
        assert records["AttemptCompleted"].levelno == logging.DEBUG

    async def test_the_message_rounds_seconds_and_does_not_repeat_the_logger_name(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG, logger="stoic"):
            await run_pipeline(LoggingListener())
        records = {record.stoic_event: record for record in caplog.records}  # type: ignore[attr-defined]
        message = records["RetryScheduled"].getMessage()
        assert message.startswith("RetryScheduled [payments/retry]: attempt=1 delay=0.500 ")
        assert "elapsed=0.000" in message
        completed = records["AttemptCompleted"].getMessage()
        assert completed.startswith("AttemptCompleted [payments/retry]: attempt=")
        assert "duration=0.000" in completed

    async def test_disabled_level_logs_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, logger="stoic"):
            await run_pipeline(LoggingListener("stoic"))
        assert caplog.records == []


class TestOpenTelemetryListener:
    """Counter and histograms through the SDK's in-memory reader."""

    async def test_metrics(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        await run_pipeline(OpenTelemetryListener(provider))
        data = reader.get_metrics_data()
        metrics = {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        assert set(metrics) == {"stoic.events", "stoic.attempt.duration", "stoic.pipeline.duration"}
        counts = {
            point.attributes["event"]: point.value
            for point in metrics["stoic.events"].data.data_points
        }
        assert counts["RetryScheduled"] == 1
        attempts = list(metrics["stoic.attempt.duration"].data.data_points)
        assert sum(point.count for point in attempts) == 2
        failure = next(p for p in attempts if p.attributes["outcome"] == "failure")
        assert failure.attributes["exception_type"] == "ConnectionError"
        assert failure.attributes["pipeline"] == "payments"
        (pipeline_point,) = metrics["stoic.pipeline.duration"].data.data_points
        assert pipeline_point.sum == 0.5
        assert pipeline_point.attributes["outcome"] == "success"


class TestPrometheusListener:
    """Counter and histograms in a fresh prometheus_client registry."""

    async def test_metrics(self) -> None:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        await run_pipeline(PrometheusListener(registry))
        labels = {
            "event": "RetryScheduled",
            "strategy": "retry",
            "pipeline": "payments",
            "outcome": "",
            "exception_type": "ConnectionError",
        }
        assert registry.get_sample_value("stoic_events_total", labels) == 1.0
        pipeline_labels = {
            "event": "PipelineCompleted",
            "strategy": "payments",
            "pipeline": "payments",
            "outcome": "success",
            "exception_type": "",
        }
        assert (
            registry.get_sample_value("stoic_pipeline_duration_seconds_sum", pipeline_labels) == 0.5
        )
        assert (
            registry.get_sample_value(
                "stoic_attempt_duration_seconds_count",
                {**labels, "event": "AttemptCompleted", "outcome": "failure"},
            )
            == 1.0
        )

    def test_namespace(self) -> None:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        PrometheusListener(registry, namespace="shop")
        names = {metric.name for metric in registry.collect()}
        assert "shop_events" in names


class TestStructlogListener:
    """structlog, captured with its testing helper."""

    async def test_events_are_logged_with_fields(self) -> None:
        import structlog

        with structlog.testing.capture_logs() as logs:
            await run_pipeline(StructlogListener())
        scheduled = next(entry for entry in logs if entry["event"] == "stoic.retry_scheduled")
        assert scheduled["log_level"] == "warning"
        assert scheduled["strategy"] == "retry"
        assert scheduled["pipeline"] == "payments"
        assert scheduled["delay"] == 0.5


class TestMissingExtras:
    """A missing library raises ImportError naming the extra to install."""

    @pytest.mark.parametrize(
        ("listener", "module", "extra"),
        [
            (OpenTelemetryListener, "opentelemetry.metrics", "otel"),
            (PrometheusListener, "prometheus_client", "prometheus"),
            (StructlogListener, "structlog", "structlog"),
        ],
    )
    def test_missing_extra(
        self, monkeypatch: pytest.MonkeyPatch, listener: Any, module: str, extra: str
    ) -> None:
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(ImportError, match=rf"pip install 'stoic\[{extra}\]'"):
            listener()

    def test_importing_stoic_does_not_import_the_libraries(self) -> None:
        import subprocess

        code = (
            "import sys, stoic, stoic.integrations;"
            "print(any(m in sys.modules for m in "
            "('opentelemetry', 'prometheus_client', 'structlog')))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"

    def test_unknown_name(self) -> None:
        import stoic.integrations

        with pytest.raises(AttributeError):
            stoic.integrations.Nope  # noqa: B018


class TestHttpAttributes:
    """A call through an HTTP integration is recorded with its method and host, and each
    attempt after the first with OpenTelemetry's ``http.request.resend_count``."""

    @staticmethod
    async def _get_through_httpx(listener: Any) -> None:
        import httpx

        import stoic
        from stoic.integrations.http import http_pipeline
        from stoic.integrations.httpx import ResilientTransport

        answers = iter([httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200)])
        transport = ResilientTransport(
            httpx.MockTransport(lambda request: next(answers)),
            pipeline=lambda scheme, host, port: http_pipeline(backoff=constant(0)),
        )
        stoic.add_listener(listener)
        try:
            async with httpx.AsyncClient(transport=transport) as client:
                response = await client.get("https://api.example.com/items?user=42")
        finally:
            stoic.remove_listener(listener)
        assert response.status_code == 200

    async def test_opentelemetry_attributes_name_the_method_host_and_resend(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        await self._get_through_httpx(OpenTelemetryListener(MeterProvider(metric_readers=[reader])))
        (metric,) = [
            metric
            for resource in reader.get_metrics_data().resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "stoic.attempt.duration"
        ]
        points = sorted(
            (dict(point.attributes) for point in metric.data.data_points),
            key=lambda attributes: attributes.get("http.request.resend_count", 0),
        )
        first, second = points
        for attributes in points:
            assert attributes["http.request.method"] == "GET"
            assert attributes["server.address"] == "api.example.com"
            assert attributes["server.port"] == 443
            assert not any(
                "items" in str(value) or "42" in str(value) for value in attributes.values()
            )
        assert "http.request.resend_count" not in first
        assert second["http.request.resend_count"] == 1

    async def test_log_records_carry_the_calls_attributes(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG, logger="stoic"):
            await self._get_through_httpx(LoggingListener())
        scheduled = next(r for r in caplog.records if r.stoic_event == "RetryScheduled")  # type: ignore[attr-defined]
        assert scheduled.stoic_attributes == {  # type: ignore[attr-defined]
            "http.request.method": "GET",
            "server.address": "api.example.com",
            "server.port": 443,
        }

    async def test_structlog_entries_carry_the_calls_attributes(self) -> None:
        import structlog

        with structlog.testing.capture_logs() as logs:
            await self._get_through_httpx(StructlogListener())
        scheduled = next(entry for entry in logs if entry["event"] == "stoic.retry_scheduled")
        assert scheduled["http.request.method"] == "GET"
        assert scheduled["server.address"] == "api.example.com"

    async def test_other_calls_have_none(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.DEBUG, logger="stoic"):
            await run_pipeline(LoggingListener())
        assert all(record.stoic_attributes == {} for record in caplog.records)  # type: ignore[attr-defined]

    async def test_an_http_errors_message_never_reaches_the_logs(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        import httpx

        import stoic
        from stoic.integrations.http import http_pipeline
        from stoic.integrations.httpx import ResilientTransport

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError(f"cannot connect for {request.url}")  # holds the query

        transport = ResilientTransport(
            httpx.MockTransport(refuse),
            pipeline=lambda scheme, host, port: http_pipeline(backoff=constant(0)),
        )
        listener = LoggingListener()
        stoic.add_listener(listener)
        try:
            with caplog.at_level(logging.DEBUG, logger="stoic"):
                async with httpx.AsyncClient(transport=transport) as client:
                    with pytest.raises(httpx.ConnectError):
                        await client.get("https://api.example.com/reset?token=SECRET")
        finally:
            stoic.remove_listener(listener)
        records = [r for r in caplog.records if hasattr(r, "stoic_event")]
        assert records
        for record in records:
            assert "SECRET" not in record.getMessage()
            assert "SECRET" not in repr(record.stoic_fields)  # type: ignore[attr-defined]
        scheduled = next(r for r in records if r.stoic_event == "RetryScheduled")  # type: ignore[attr-defined]
        assert scheduled.stoic_fields["exception"] == "ConnectError"  # type: ignore[attr-defined]
