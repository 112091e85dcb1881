"""The API's answer to a database error that escaped ``Db`` (work that used a session of its
own): 503 with the reason when the database is away, else a 500 that quotes nothing of it."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from corral.api.problems import install_handlers

SECRET = "hunter2-statement-parameter"


def _app() -> FastAPI:
    app = FastAPI()
    install_handlers(app)
    gone = psycopg.OperationalError("server closed the connection unexpectedly")

    @app.get("/api/v1/away")
    async def away() -> None:
        raise sa_exc.OperationalError("SELECT %(p)s", {"p": SECRET}, gone)

    @app.get("/api/v1/bug")
    async def bug() -> None:
        raise sa_exc.IntegrityError("INSERT %(p)s", {"p": SECRET}, Exception("duplicate key"))

    return app


def test_a_database_away_is_503_and_other_database_errors_500_quoting_nothing() -> None:
    with TestClient(_app(), raise_server_exceptions=False) as client:
        away = client.get("/api/v1/away")
        bug = client.get("/api/v1/bug")
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert away.json()["title"] == "Database unavailable"
    assert away.json()["detail"].startswith("the database is unreachable")
    assert bug.status_code == 500
    assert bug.json()["detail"] == "internal error; see the server log"
    for answer in (away, bug):
        assert answer.headers["content-type"] == "application/problem+json"
        assert SECRET not in answer.text and "SELECT" not in answer.text
