"""This test process's OpenTelemetry provider, shared by every test that records spans in
process: OpenTelemetry takes the global provider once and refuses a second, so the chassis
and gateway tests must share one."""

import functools

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from chassis.tracing import RequestRootSampler

__all__ = ["process_exporter"]


@functools.cache
def process_exporter() -> InMemorySpanExporter:
    """The exporter of the global provider (the default sampler), set up on first use."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=RequestRootSampler(ParentBased(ALWAYS_ON)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter
