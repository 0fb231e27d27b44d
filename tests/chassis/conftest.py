"""One small Flask app with every chassis helper installed, for the chassis tests."""

import dataclasses

import pytest
from flask import Flask, request

from chassis.errors import APIError
from chassis.health import install_health
from chassis.inputs import json_body, page_params
from chassis.responses import init_service_app

SERVED_BY = "svc-10.0.0.5-8080"


@pytest.fixture
def app():
    app = Flask(__name__, static_folder=None)
    app.config.update(INSTANCE_ID=SERVED_BY, MAX_CONTENT_LENGTH=8192)
    init_service_app(app, "svc")

    @app.get("/ok")
    def ok():
        return {"ok": True}

    @app.get("/boom")
    def boom():
        raise RuntimeError("password=hunter2 in /srv/secret.py")

    @app.get("/teapot")
    def teapot():
        raise APIError(
            418, "teapot", "short and stout", {"spout": "here"}, {"Retry-After": "7"}
        )

    @app.post("/body")
    def body():
        return {"parsed": repr(json_body())}

    @app.post("/werkzeug-json")
    def werkzeug_json():
        return request.get_json()

    @app.get("/page")
    def page():
        return dataclasses.asdict(page_params())

    install_health(
        app,
        "svc",
        {
            "database": lambda: True,
            "cache": lambda: request.args.get("cache") != "down",
        },
    )
    return app


@pytest.fixture
def client(app):
    return app.test_client()
