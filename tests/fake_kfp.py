"""A small fake of the Kubeflow Pipelines v2beta1 REST API, on loopback, for kfp.Client.

kfp.Client talks through urllib3, which `responses` cannot intercept, so tests point it at this
real HTTP server instead. It answers what `dlx submit` and `dlx schedule` use — healthz,
experiments (create, list by name, get), pipelines (upload, list by name) and their versions
(upload, list by name), runs (create, get), recurring runs (create, list, get, enable, disable,
delete) — and records every request for assertions. An upload's spec (multipart, as the client
sends it) is kept as the parsed YAML under the version's ``spec``, with the platform document
(kfp-kubernetes' settings) merged in as ``platforms``.
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
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
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

    def _upload_pipeline(self, request: Request) -> tuple[int, dict]:
        name = request.query["name"][0]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            return 409, {"error": "exists", "code": 6, "message": f"pipeline {name} already exists"}
        pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": name, "created_at": CREATED}
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._add_version(pipeline["pipeline_id"], name, request.body)
        return 200, pipeline

    def _upload_version(self, request: Request) -> tuple[int, dict]:
        pipeline_id = request.query["pipelineid"][0]
        if pipeline_id not in self.pipelines:
            return _get(self.pipelines, pipeline_id)
        return 200, self._add_version(pipeline_id, request.query["name"][0], request.body)

    def _add_version(self, pipeline_id: str, name: str, spec: Any) -> dict:
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": str(uuid.uuid4()), "display_name": name,
                   "created_at": CREATED}
        self.versions[version["pipeline_version_id"]] = {**version, "spec": spec}
        return version

    def _list_pipelines(self, request: Request) -> tuple[int, dict]:
        found = _filtered(list(self.pipelines.values()), request)
        return 200, ({"pipelines": found, "total_size": len(found)} if found else {})

    def _list_versions(self, request: Request, pipeline_id: str) -> tuple[int, dict]:
        mine = [{k: v for k, v in version.items() if k != "spec"} for version in self.versions.values()
                if version["pipeline_id"] == pipeline_id]
        found = _filtered(mine, request)
        return 200, ({"pipeline_versions": found, "total_size": len(found)} if found else {})

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


def _filtered(rows: list[dict], request: Request) -> list[dict]:
    """``rows`` whose display_name a ``filter`` query (EQUALS predicates) names."""
    if "filter" not in request.query:
        return rows
    predicates = json.loads(request.query["filter"][0])["predicates"]
    names = {p["stringValue"] for p in predicates if p["key"] in ("display_name", "name")}
    return [row for row in rows if row["display_name"] in names]


def _spec(content_type: str, raw: bytes) -> Any:
    """The uploaded file of a multipart body, as YAML."""
    import yaml
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    [part] = [part for part in message.iter_parts() if part.get_filename()]
    spec, *platform = yaml.safe_load_all(part.get_payload(decode=True))  # kfp-kubernetes adds a platform document
    return {**spec, **(platform[0] if platform else {})}


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
    ("POST", f"{_API}/pipelines/upload", FakeKfp._upload_pipeline),
    ("POST", f"{_API}/pipelines/upload_version", FakeKfp._upload_version),
    ("GET", f"{_API}/pipelines", FakeKfp._list_pipelines),
    ("GET", f"{_API}/pipelines/{_ID}/versions", FakeKfp._list_versions),
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
            kind = self.headers.get("Content-Type", "")
            body = _spec(kind, raw) if kind.startswith("multipart/") else json.loads(raw) if raw else None
            request = Request(self.command, url.path, parse_qs(url.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
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
