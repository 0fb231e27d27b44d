"""A gateway span recorder (chassis.spans) for tests: what it ends is kept in a list, and
what a collector would receive of it."""

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from chassis.spanexport import OTLPEncoder
from chassis.spans import Sampling, SpanRecorder

__all__ = ["exported", "keeping_recorder"]


def keeping_recorder(sampler: str = "parentbased_always_on"):
    """(recorder, the list its ended spans are appended to, children before parents)."""
    ended: list = []
    return SpanRecorder(Sampling(sampler), ended.append), ended


def exported(spans) -> list:
    """The OTLP spans chassis.spanexport makes of these records, decoded."""
    encoder = OTLPEncoder({}, "switchyard")
    request = encoder.request([encoder.span(s) for s in spans])
    [resource_spans] = ExportTraceServiceRequest.FromString(request).resource_spans
    return list(resource_spans.scope_spans[0].spans)
