"""The benchmarks' upstream: a plain Flask app answering a small fixed JSON body.

Run as `gunicorn -k gthread -w 1 --threads 4 bench.upstream:app`, the setup issue 11
measured; nothing of ours in it, so the figures are the proxies' and Flask's alone. It names
itself in X-Served-By (BENCH_INSTANCE), as every service does, so the bench can see that the
gateway balances over every instance before measuring.
"""

import os

from flask import Flask, jsonify

ITEM = {"id": 1, "name": "bench", "items": list(range(20))}
SERVED_BY = os.environ.get("BENCH_INSTANCE", "bench-upstream")

app = Flask(__name__)


@app.get("/bench/item")
def item():
    return jsonify(ITEM), {"X-Served-By": SERVED_BY}


@app.get("/health")
def health():
    return jsonify(status="passing")
