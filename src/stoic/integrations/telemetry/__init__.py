"""Telemetry listeners: stdlib logging, structlog, OpenTelemetry and Prometheus.

Each imports its library only when built; ``stoic.integrations`` re-exports them.
"""
