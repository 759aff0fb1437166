"""A small fake of the Kubeflow Pipelines v2beta1 REST API, on loopback, for kfp.Client.

kfp.Client talks through urllib3, which `responses` cannot intercept, so tests point it at this
real HTTP server instead. It answers what `dlx submit` and `dlx schedule` use — healthz,
experiments (create, list by name, get), runs (create, get), recurring runs (create, list, get,
enable, disable, delete) — and records every request for assertions.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CREATED = "2026-11-28T03:00:00Z"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class FakeKfp:
    """Start with `with FakeKfp() as server:`; point kfp.Client at ``server.url``.

    ``token``: when set, a request without ``Authorization: Bearer <token>`` gets a 401.
    ``run_states``: what successive GETs of a run report; the last one repeats.
    """

    def __init__(self, token: str | None = None, run_states: tuple[str, ...] = ("PENDING",)) -> None:
        self.token = token
        self.run_states = list(run_states)
        self.requests: list[Request] = []
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeKfp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method: str, path: str) -> list[Request]:
        """The recorded requests for one method and exact path."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def handle(self, request: Request) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(request)
            if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"error": "Unauthorized", "code": 16, "message": "Unauthorized"}
            for method, pattern, action in _ROUTES:
                match = re.fullmatch(pattern, request.path)
                if method == request.method and match:
                    return action(self, request, *match.groups())
            return 404, {"error": "Not Found", "code": 5, "message": f"no route for {request.method} {request.path}"}

    def _healthz(self, request: Request) -> tuple[int, dict]:
        return 200, {"multi_user": False}

    def _create_experiment(self, request: Request) -> tuple[int, dict]:
        experiment = {**request.body, "experiment_id": str(uuid.uuid4()), "created_at": CREATED,
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return 200, experiment

    def _list_experiments(self, request: Request) -> tuple[int, dict]:
        found = list(self.experiments.values())
        if "filter" in request.query:
            predicates = json.loads(request.query["filter"][0])["predicates"]
            names = {p["stringValue"] for p in predicates if p["key"] == "display_name"}
            found = [e for e in found if e["display_name"] in names]
        return 200, ({"experiments": found, "total_size": len(found)} if found else {})

    def _get_experiment(self, request: Request, experiment_id: str) -> tuple[int, dict]:
        return _get(self.experiments, experiment_id)

    def _create_run(self, request: Request) -> tuple[int, dict]:
        run = {**request.body, "run_id": str(uuid.uuid4()), "created_at": CREATED, "state": "PENDING"}
        self.runs[run["run_id"]] = run
        return 200, run

    def _get_run(self, request: Request, run_id: str) -> tuple[int, dict]:
        if run_id in self.runs:
            state = self.run_states.pop(0) if len(self.run_states) > 1 else self.run_states[0]
            self.runs[run_id]["state"] = state
            if state == "FAILED":
                self.runs[run_id]["error"] = {"code": 2, "message": "task train failed"}
        return _get(self.runs, run_id)

    def _create_recurring_run(self, request: Request) -> tuple[int, dict]:
        enabled = request.body.get("mode") == "ENABLE"
        recurring = {**request.body, "recurring_run_id": str(uuid.uuid4()), "created_at": CREATED,
                     "status": "ENABLED" if enabled else "DISABLED"}
        self.recurring_runs[recurring["recurring_run_id"]] = recurring
        return 200, recurring

    def _list_recurring_runs(self, request: Request) -> tuple[int, dict]:
        found = list(self.recurring_runs.values())
        if "experiment_id" in request.query:
            found = [r for r in found if r.get("experiment_id") == request.query["experiment_id"][0]]
        return 200, {"recurringRuns": found, "total_size": len(found)}

    def _get_recurring_run(self, request: Request, recurring_run_id: str) -> tuple[int, dict]:
        return _get(self.recurring_runs, recurring_run_id)

    def _set_recurring_run(self, request: Request, recurring_run_id: str, action: str) -> tuple[int, dict]:
        status, found = _get(self.recurring_runs, recurring_run_id)
        if status == 200:
            found["status"] = "ENABLED" if action == "enable" else "DISABLED"
            return 200, {}
        return status, found

    def _delete_recurring_run(self, request: Request, recurring_run_id: str) -> tuple[int, dict]:
        status, found = _get(self.recurring_runs, recurring_run_id)
        if status == 200:
            del self.recurring_runs[recurring_run_id]
            return 200, {}
        return status, found


def _get(table: dict[str, dict], key: str) -> tuple[int, dict]:
    if key in table:
        return 200, table[key]
    return 404, {"error": f"{key} not found", "code": 5, "message": f"ResourceNotFoundError: {key} not found"}


_API = "/apis/v2beta1"
_ID = r"([^/:]+)"
_ROUTES = [
    ("GET", f"{_API}/healthz", FakeKfp._healthz),
    ("POST", f"{_API}/experiments", FakeKfp._create_experiment),
    ("GET", f"{_API}/experiments", FakeKfp._list_experiments),
    ("GET", f"{_API}/experiments/{_ID}", FakeKfp._get_experiment),
    ("POST", f"{_API}/runs", FakeKfp._create_run),
    ("GET", f"{_API}/runs/{_ID}", FakeKfp._get_run),
    ("POST", f"{_API}/recurringruns", FakeKfp._create_recurring_run),
    ("GET", f"{_API}/recurringruns", FakeKfp._list_recurring_runs),
    ("GET", f"{_API}/recurringruns/{_ID}", FakeKfp._get_recurring_run),
    ("POST", f"{_API}/recurringruns/{_ID}:(enable|disable)", FakeKfp._set_recurring_run),
    ("DELETE", f"{_API}/recurringruns/{_ID}", FakeKfp._delete_recurring_run),
]


def _handler(fake: FakeKfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(self.command, url.path, parse_qs(url.query),
                              {k.lower(): v for k, v in self.headers.items()}, json.loads(raw) if raw else None)
            status, body = fake.handle(request)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean."""

    return Handler
