"""gunicorn's access log for the services, joined to the traces: every line carries the
request's X-Request-ID and the trace_id and span_id of its server span.

Off by default, as gunicorn's access log is; `--access-logfile -` (or
GUNICORN_CMD_ARGS="--access-logfile -") turns it on. A line, in the house shape:

    INFO access: 127.0.0.1 "POST /orders HTTP/1.1" 201 412 3ms request_id=abc trace_id=4bf9... span_id=00f0...

The ids are "-" when tracing is off or the request was not traced (/health).
"""

from gunicorn.glogging import Logger

from chassis.tracing import ENVIRON_SPAN_ID, ENVIRON_TRACE_ID

__all__ = ["ACCESS_LOG_FORMAT", "TraceAccessLogger"]

ACCESS_LOG_FORMAT = (
    'INFO access: %(h)s "%(r)s" %(s)s %(b)s %(M)sms '
    "request_id=%({x-request-id}i)s trace_id=%(trace_id)s span_id=%(span_id)s"
)


class TraceAccessLogger(Logger):
    """gunicorn's logger with two more access-log atoms, `trace_id` and `span_id`, which
    the server span left in the WSGI environ (chassis.tracing)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["trace_id"] = environ.get(ENVIRON_TRACE_ID, "-")
        atoms["span_id"] = environ.get(ENVIRON_SPAN_ID, "-")
        return atoms
