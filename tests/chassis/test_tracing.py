"""chassis.tracing in this process: configuration from OTEL_*, the request-root sampler, the
dropped-span count. The gateway's own spans: test_spans.py and test_spanexport.py; everyone's
spans across real processes: tests/integration/test_tracing.py."""

import logging
import os
import subprocess
import sys
import threading

import pytest
import requests
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from chassis import tracing
from chassis.env import ConfigError
from tests.support.processes import wait_until

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    "environ, enabled",
    [
        ({}, False),
        (ENDPOINT, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp"}, True),
    ],
)
def test_tracing_is_on_with_an_endpoint_unless_disabled(environ, enabled):
    assert tracing.tracing_enabled(environ) is enabled


@pytest.mark.parametrize(
    "environ, description",
    [
        ({}, "ParentBased{root:AlwaysOnSampler"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            "TraceIdRatioBased{0.25}",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"},
            "ParentBased{root:TraceIdRatioBased{1.0}",
        ),
    ],
)
def test_the_sampler_is_the_one_otel_traces_sampler_names(environ, description):
    assert tracing.sampler_from_env(environ).get_description().startswith(description)


@pytest.mark.parametrize(
    "environ, variable",
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
    ],
)
def test_a_bad_sampler_setting_names_its_variable(environ, variable):
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        tracing.sampler_from_env(environ)


@pytest.mark.parametrize("value", ["", "tracecontext", "tracecontext, baggage"])
def test_the_gateway_starts_with_the_propagators_it_speaks(value):
    tracing.check_settings({**ENDPOINT, "OTEL_PROPAGATORS": value})


@pytest.mark.parametrize(
    "value, named",
    [("b3", "b3"), ("tracecontext,b3multi", "b3multi"), ("none", "none")],
)
def test_the_gateway_refuses_a_propagator_it_does_not_speak(value, named):
    with pytest.raises(ConfigError, match=f"^OTEL_PROPAGATORS: .*not {named}$"):
        tracing.check_settings({**ENDPOINT, "OTEL_PROPAGATORS": value})


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        # the signal's own variable wins, as it does for the endpoint
        {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
    ],
)
def test_the_exporter_it_has_is_accepted(environ):
    tracing.check_settings({**ENDPOINT, **environ})


@pytest.mark.parametrize(
    "environ, variable",
    [
        ({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
    ],
)
def test_an_exporter_or_protocol_it_lacks_stops_the_boot(
    environ, variable, monkeypatch
):
    """The gateway's boot (check_settings) and a service's (instrument_service_app)."""
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        tracing.check_settings({**ENDPOINT, **environ})
    app = Flask(__name__)
    app.config.update(INSTANCE_ID="svc-h-1", SQLALCHEMY_DATABASE_URI="sqlite://")
    for name, value in {**ENDPOINT, **environ}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        tracing.instrument_service_app(app, SQLAlchemy(app), "svc", "1.0")


def test_tracing_off_installs_nothing(monkeypatch, tmp_path):
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    app = Flask(__name__)
    app.config.update(
        INSTANCE_ID="svc-h-1", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/x.db"
    )
    db = SQLAlchemy(app)
    wsgi_app = app.wsgi_app
    tracing.instrument_service_app(app, db, "svc", "1.0")
    assert app.wsgi_app == wsgi_app  # the same bound method: nothing wraps it
    assert not hasattr(requests.Session.send, "__wrapped__")
    assert tracing.configure_tracing("svc", "svc-h-1", "1.0") is False
    assert tracing._configured_pid is None  # no SDK provider was set up


def run_python(code: str, **otel: str) -> str:
    """The output of `code` run by a fresh interpreter with only these OTEL_* variables:
    the global provider can be set once per process, and this one has its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **otel},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_the_resource_names_the_instance_as_consul_does():
    code = (
        "from opentelemetry import trace\n"
        "from chassis import tracing\n"
        "tracing.configure_tracing('user-service', 'user-service-10.0.0.5-8001', '1.2')\n"
        "attributes = trace.get_tracer_provider().resource.attributes\n"
        "for key in ('service.name', 'service.instance.id', 'service.version', 'team'):\n"
        "    print(key, attributes[key])\n"
    )
    output = run_python(
        code,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_RESOURCE_ATTRIBUTES="team=payments,service.name=other",
    )
    assert output.splitlines() == [
        "service.name user-service",  # the Consul name wins over the variable
        "service.instance.id user-service-10.0.0.5-8001",
        "service.version 1.2",
        "team payments",  # the variable's other attributes are kept
    ]


def test_concurrent_first_calls_wait_for_the_one_set_up():
    # A worker's threads serving its first requests at once: none may go on before the SDK
    # is there (they would record nothing). In a process of its own, for the global provider.
    code = """
import threading, time
from opentelemetry import trace
from chassis import tracing

set_up, calls = tracing._set_up_sdk, []
def slow_set_up(*args):
    calls.append(args)
    time.sleep(0.5)
    set_up(*args)
tracing._set_up_sdk = slow_set_up

seen = []
def first_request():
    tracing.configure_tracing("svc", "svc-h-1", "1.0")
    seen.append(type(trace.get_tracer_provider()).__name__)
threads = [threading.Thread(target=first_request) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(calls), sorted(set(seen)))
"""
    # the endpoint is never reached: nothing is traced here
    output = run_python(code, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert output == "1 ['TracerProvider']\n"


# -- the sampler and the dropped-span count, on a provider of the test's own --------------


def spans_of(sampler, make_spans) -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    make_spans(provider.get_tracer("test"))
    return [(s.name, s.kind) for s in exporter.get_finished_spans()]


def test_only_a_server_span_may_start_a_trace():
    def make_spans(tracer):
        # a watcher's Consul call, a health check's database ping: no parent, not a server
        tracer.start_span("GET consul", kind=SpanKind.CLIENT).end()
        tracer.start_span("SELECT", kind=SpanKind.CLIENT).end()
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER):
            tracer.start_span("GET user-service", kind=SpanKind.CLIENT).end()

    assert spans_of(tracing.RequestRootSampler(ALWAYS_ON), make_spans) == [
        ("GET user-service", SpanKind.CLIENT),
        ("POST /orders", SpanKind.SERVER),
    ]


class BlockingExporter(SpanExporter):
    """Holds the first export until released; fails every export when told to."""

    def __init__(self, result=SpanExportResult.SUCCESS):
        self.result = result
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans):
        self.entered.set()
        self.release.wait(10)
        return self.result


def end_spans(processor, count: int) -> None:
    tracer = TracerProvider(shutdown_on_exit=False)
    tracer.add_span_processor(processor)
    for _ in range(count):
        tracer.get_tracer("test").start_span("s", kind=SpanKind.SERVER).end()


def test_spans_that_do_not_fit_the_queue_are_counted_as_dropped():
    exporter = BlockingExporter()
    processor = tracing.counting_batch_processor(
        exporter, max_queue_size=1, max_export_batch_size=1
    )
    before = tracing.dropped_spans()
    end_spans(processor, 1)
    assert exporter.entered.wait(10)  # that span is out of the queue, being exported
    end_spans(processor, 3)  # one fits the queue, two do not
    assert tracing.dropped_spans() - before == 2
    exporter.release.set()
    processor.shutdown()


def test_spans_whose_export_fails_are_counted_as_dropped():
    exporter = BlockingExporter(SpanExportResult.FAILURE)
    exporter.release.set()
    processor = tracing.counting_batch_processor(exporter, max_export_batch_size=512)
    before = tracing.dropped_spans()
    end_spans(processor, 3)
    processor.force_flush()
    wait_until(lambda: tracing.dropped_spans() - before == 3, what="3 dropped")
    processor.shutdown()


def test_drops_are_logged_as_they_begin_then_at_most_once_a_minute(monkeypatch, caplog):
    now = [1000.0]
    monkeypatch.setattr(tracing, "_clock", lambda: now[0])
    monkeypatch.setattr(tracing, "_dropped_logged_at", -float("inf"))
    monkeypatch.setattr(tracing, "_dropped", 0)
    caplog.set_level(logging.WARNING, "tracing")
    tracing.count_dropped(3)
    now[0] += 59
    tracing.count_dropped(2)  # within the minute: counted, not told
    now[0] += 1
    tracing.count_dropped(1)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "spans dropped so far: 3",
        "spans dropped so far: 6",
    ]


def test_at_exit_what_is_still_unsent_is_counted_and_the_total_told(
    monkeypatch, caplog
):
    """A collector that hangs: the exit gives up waiting, and says what was lost."""
    monkeypatch.setattr(tracing, "_dropped_logged_at", -float("inf"))
    monkeypatch.setattr(tracing, "_dropped", 0)
    caplog.set_level(logging.WARNING, "tracing")
    exporter = BlockingExporter()
    processor = tracing.counting_batch_processor(exporter, max_export_batch_size=1)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    end_spans(processor, 1)
    assert exporter.entered.wait(10)  # being exported, and two more queued
    end_spans(processor, 2)
    tracing._shutdown_within(provider, processor, 0.1)
    assert tracing.dropped_spans() == 3
    assert [r.getMessage() for r in caplog.records] == [
        "spans dropped in all: 3, never exported"
    ]
    exporter.release.set()


# -- failing exports, told once, then once a minute, then once as they succeed again ------


@pytest.fixture
def failures(monkeypatch, caplog):
    """(a fresh ExportFailures on the exporter's logger, its clock, the lines told)."""
    now = [1000.0]
    watcher = tracing.ExportFailures(clock=lambda: now[0])
    exporter_log = logging.getLogger(tracing.EXPORTER_LOGGER)
    exporter_log.addFilter(watcher)
    caplog.set_level(logging.INFO)
    this_thread = threading.get_ident()  # not the export threads other tests left

    def told():
        return [r.getMessage() for r in caplog.records if r.thread == this_thread]

    yield watcher, now, told
    exporter_log.removeFilter(watcher)


def exporting(*outcomes):
    """An export that logs as the SDK's OTLP client does, then says `outcomes` in turn."""
    exporter_log, results = logging.getLogger(tracing.EXPORTER_LOGGER), iter(outcomes)

    def export(batch) -> bool:
        delivered = next(results)
        if not delivered:
            exporter_log.warning("Transient error %s, retrying in 1.00s.", batch)
            exporter_log.error("Failed to export spans batch due to timeout.")
        return delivered

    return export


def test_failing_exports_are_told_once_then_once_a_minute_then_their_end(failures):
    watcher, now, told = failures
    export = watcher.watched(exporting(True, *[False] * 5, True, True))
    assert export("b0") is True
    assert told() == []  # succeeding: nothing to tell
    for batch in ("refused", "b2", "b3"):
        assert export(batch) is False
        now[0] += 20
    assert told() == [
        (
            "span export failing: Transient error refused, retrying in 1.00s. ..."
            " Failed to export spans batch due to timeout."
        )
    ]
    export("b4")  # a minute after the first line
    now[0] += 5
    export("b5")
    assert told()[1:] == [
        (
            "span export still failing: 3 more batches failed in the last 60 s (the"
            " latest: Transient error b4, retrying in 1.00s. ... Failed to export"
            " spans batch due to timeout.)"
        )
    ]
    export("b6")
    export("b7")
    assert told()[2:] == ["span export succeeds again, after 5 failed batches in 65 s"]


def test_what_the_exporter_logs_outside_an_export_of_ours_is_not_held(failures):
    watcher, _, told = failures
    watcher.watched(exporting(False))("b1")
    logging.getLogger(tracing.EXPORTER_LOGGER).error("Exporter already shutdown")
    assert told()[1:] == ["Exporter already shutdown"]


def test_a_service_tells_its_collector_down_once_not_per_batch(monkeypatch, caplog):
    """The SDK's own exporter and client, behind the services' batch processor."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    watcher = tracing.ExportFailures()  # this process's may be failing already
    monkeypatch.setattr(tracing, "export_failures", watcher)
    caplog.set_level(logging.INFO)
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=3)
    processor = tracing.counting_batch_processor(exporter)
    before = tracing.dropped_spans()
    try:
        for count in range(1, 4):
            end_spans(processor, 1)
            processor.force_flush()
            wait_until(
                lambda n=count: tracing.dropped_spans() - before >= n, what="a drop"
            )
        processor.shutdown()
    finally:
        logging.getLogger(tracing.EXPORTER_LOGGER).removeFilter(watcher)
    # not the exporter's lines, one per retry and per batch: one of ours
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []
    [failing] = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("span export failing: Transient error ")
    ]
    assert "Connection refused" in failing


def test_the_gateway_tells_its_collector_down_once_not_per_batch():
    code = """
import logging, sys, time
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s: %(message)s")
from chassis import tracing
from chassis.spans import attempt_span
recorder = tracing.span_recorder("gateway", "gateway-h-1", "1.0")
for count in range(1, 4):
    with recorder.server_span({}, "GET", "/api/x", "r") as span:
        span.finish(200)
    for _ in range(600):  # each span its own batch, its export failed
        if tracing.dropped_spans() >= count:
            break
        time.sleep(0.05)
print("dropped", tracing.dropped_spans())
"""
    output = run_python(
        code,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TIMEOUT="3",
        OTEL_BSP_SCHEDULE_DELAY="10",
    )
    lines = [
        line
        for line in output.splitlines()
        if not line.startswith("tracing: exporting")
    ]
    assert "dropped 3" in lines
    [failing] = [line for line in lines if "span export failing" in line]
    assert failing.startswith("tracing: span export failing: Transient error ")
    assert not [line for line in lines if line.startswith("opentelemetry")]
