"""Runs and recurring runs of topic pipelines on a Kubeflow Pipelines server, through kfp.Client.

Every pipeline is compiled afresh for the submission (image, GPUs and the Kubernetes settings are
compile-time choices) and registered as a named pipeline (dlx-TOPIC) with one version per distinct
compiled spec (named by its sha256); runs and recurring runs reference that version, so the UI
shows which spec each run ran and a resubmission of the same spec adds no version. kfp.Client's own console
output (links, a version warning) is swallowed: the caller prints what matters. Its failures
become one-line DlxErrors naming the server and the fix.

Auth: with a token, every request carries ``Authorization: Bearer <token>``. Without a host,
kfp.Client finds the server itself: in a pod through the in-cluster config, elsewhere through
the kubeconfig's current context (the API server's service proxy, with its credentials).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp import Client

from components.errors import DlxError
from components.registry import Topic
from pipelines.compile import compile_suite, compile_topic
from pipelines.deployment import Deployment
from pipelines.suite import Suite

POLL_SECONDS = 10.0
"""How often `wait` asks the server for the run's state."""
FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
"""Shorthands the server's cron library (robfig/cron) accepts besides six fields and @every."""


@dataclass(frozen=True)
class Schedule:
    """One recurring run as `dlx schedule list` shows it."""

    id: str
    name: str
    status: str
    cron: str
    max_concurrency: str
    created: str


def check_cron(expression: str) -> str:
    """Refuse what the server would reject later: it wants six fields, seconds first."""
    text = " ".join(expression.split())
    if text in CRON_DESCRIPTORS or re.fullmatch(r"@every \d+[\dhms.]*", text):
        return text
    fields = text.split(" ") if text else []
    if len(fields) != 6:
        raise DlxError(f"cron expression '{expression}' has {len(fields)} fields; Kubeflow Pipelines wants 6 "
                       "(second minute hour day-of-month month day-of-week), e.g. '0 0 3 * * *' for 03:00 daily")
    bad = [f for f in fields if not re.fullmatch(r"[\w*/,?\-]+", f)]
    if bad:
        raise DlxError(f"cron expression '{expression}': field '{bad[0]}' is not a cron field "
                       "(digits, names, *, ?, ranges a-b, lists a,b and steps */n)")
    return text


class _Client(Client):
    """kfp.Client that probes healthz once: kfp's own probe retries 5 times, 5 s apart, even on a 401."""

    def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
        return self._healthz_api.healthz_service_get_healthz()


class Kubeflow:
    """A connection to one Kubeflow Pipelines server."""

    def __init__(self, host: str | None, token: str | None = None, namespace: str | None = None) -> None:
        self.host = host.rstrip("/") if host else None
        self.namespace = namespace or None
        with self._calls():
            self.client = _Client(host=self.host, existing_token=token or None, namespace=self.namespace or "kubeflow")

    @property
    def where(self) -> str:
        server = f"at {self.host}" if self.host else "through your kubeconfig"
        return f"{server} in namespace {self.namespace}" if self.namespace else server

    def link(self, kind: str, resource_id: str) -> str | None:
        """The UI page of a run (kind "runs") or recurring run ("recurringrun"), when the host is known."""
        return f"{self.host}/#/{kind}/details/{resource_id}" if self.host else None

    def submit(self, topic: Topic | Suite, arguments: dict, *, experiment: str, run_name: str, deployment: Deployment,
               sweep_parallel: int | None = None) -> str:
        """Start one run of the topic's pipeline or the suite in ``experiment`` (created if missing);
        returns the run id. With ``sweep_parallel`` the run is the topic's sweep pipeline (pipelines.sweep)."""
        with _package(topic, deployment, sweep_parallel) as package, self._calls():
            pipeline_id, version_id = self._version(package)
            experiment_id = self.client.create_experiment(experiment).experiment_id
            result = self.client.run_pipeline(experiment_id, run_name, params=arguments, pipeline_id=pipeline_id,
                                              version_id=version_id)
        return result.run_id

    def _version(self, package: str) -> tuple[str, str]:
        """(pipeline id, version id) of the compiled spec: the pipeline named after the file
        (dlx-TOPIC, dlx-sweep-TOPIC) is registered once, and each distinct spec once as a version
        named by its sha256, which later runs of the same spec reuse."""
        name = Path(package).stem
        version_name = f"{name}-{hashlib.sha256(Path(package).read_bytes()).hexdigest()[:12]}"
        pipeline_id = self.client.get_pipeline_id(name)
        if pipeline_id is None:
            pipeline_id = self.client.upload_pipeline(package, pipeline_name=name,
                                                      description=f"dlx pipeline {name}").pipeline_id
        found = self.client.list_pipeline_versions(pipeline_id, page_size=1, filter=json.dumps({"predicates": [
            {"operation": "EQUALS", "key": "display_name", "stringValue": version_name}]})).pipeline_versions
        if found:
            return pipeline_id, found[0].pipeline_version_id
        version = self.client.upload_pipeline_version(package, version_name, pipeline_id=pipeline_id,
                                                      description=f"{name}, spec sha256 {version_name[-12:]}")
        return pipeline_id, version.pipeline_version_id

    def wait(self, run_id: str, on_state: Callable[[str, float], None]) -> tuple[str, str]:
        """Poll until the run ends, telling ``on_state`` each new state; returns (state, error message)."""
        started, last = time.monotonic(), None
        while True:
            with self._calls():
                run = self.client.get_run(run_id)
            state = run.state or "PENDING"
            if state != last:
                on_state(state, time.monotonic() - started)
                last = state
            if state in FINAL_STATES:
                return state, (run.error.message if run.error and run.error.message else "")
            time.sleep(POLL_SECONDS)

    def schedule(
        self, topic: Topic | Suite, arguments: dict, *, experiment: str, name: str, cron: str, max_concurrency: int,
        deployment: Deployment,
    ) -> str:
        """Create an enabled recurring run on ``cron`` (see check_cron); returns its id.

        Missed runs are not caught up (``no_catchup``): after a pause, one retraining is enough.
        """
        with _package(topic, deployment) as package, self._calls():
            pipeline_id, version_id = self._version(package)
            experiment_id = self.client.create_experiment(experiment).experiment_id
            recurring = self.client.create_recurring_run(
                experiment_id, name, cron_expression=cron, max_concurrency=max_concurrency, no_catchup=True,
                params=arguments, pipeline_id=pipeline_id, version_id=version_id, enabled=True)
        return recurring.recurring_run_id

    def schedules(self, experiment: str | None = None) -> list[Schedule]:
        """Every recurring run, or those of ``experiment``."""
        found, token = [], ""
        with self._calls():
            experiment_id = self.client.get_experiment(experiment_name=experiment).experiment_id if experiment else None
            while True:
                page = self.client.list_recurring_runs(page_token=token, page_size=100, experiment_id=experiment_id)
                found += page.recurring_runs or []
                token = page.next_page_token
                if not token:
                    break
        return [_schedule(r) for r in found]

    def change(self, action: str, recurring_run_id: str) -> None:
        """``action`` (enable, disable or delete) the recurring run ``recurring_run_id``."""
        methods = {"enable": self.client.enable_recurring_run, "disable": self.client.disable_recurring_run,
                   "delete": self.client.delete_recurring_run}
        missing = f"no recurring run '{recurring_run_id}' {self.where}; see `dlx schedule list`"
        with self._calls(missing):
            methods[action](recurring_run_id)

    @contextlib.contextmanager
    def _calls(self, missing: str | None = None) -> Iterator[None]:
        """Quiet kfp.Client and turn its failures into one-line DlxErrors; ``missing`` words a 404."""
        import kfp_server_api
        import urllib3

        retries = logging.getLogger("urllib3")
        level = retries.level
        retries.setLevel(logging.ERROR)  # its retry warnings would say three times what the error says once
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="This client only works with Kubeflow Pipeline")
                yield
        except kfp_server_api.ApiException as exc:
            raise DlxError(self._refusal(exc, missing)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise DlxError(self._unreachable(_innermost(exc))) from None
        except ValueError as exc:  # kfp's words for a name that matches no experiment, or several
            text = str(exc).rstrip(".")
            if text.startswith("No experiment"):
                raise DlxError(f"{text} {self.where}; check --experiment") from None
            if text.startswith("Multiple experiments"):
                raise DlxError(f"{text} {self.where}; give them distinct names in the Kubeflow UI") from None
            raise
        finally:
            retries.setLevel(level)

    def _unreachable(self, reason: str) -> str:
        fix = "check --host" if self.host else "pass --host URL or set DLX_KFP_HOST"
        return f"cannot reach Kubeflow Pipelines {self.where} ({reason}); {fix}"

    def _refusal(self, exc: Any, missing: str | None) -> str:
        status = exc.status or 0
        if status == 0:
            return self._unreachable(str(exc.reason))
        if status == 403 and self.namespace:
            return (f"Kubeflow Pipelines {self.where} refused access (HTTP 403): the token cannot see namespace "
                    f"{self.namespace}; check --namespace (your profile's namespace) or the token's access to it")
        if status in (401, 403):
            return (f"Kubeflow Pipelines {self.where} refused the credentials (HTTP {status}); "
                    "pass --token or set DLX_KFP_TOKEN")
        if status == 404:
            return missing or (f"no Kubeflow Pipelines API {self.where} (HTTP 404); "
                               "check --host (the API usually sits under /pipeline)")
        return f"Kubeflow Pipelines {self.where} answered HTTP {status} {exc.reason}: {_message(exc.body)}"


@contextlib.contextmanager
def _package(topic: Topic | Suite, deployment: Deployment, sweep_parallel: int | None = None) -> Iterator[str]:
    """The topic's pipeline (or its sweep), or the suite, compiled to a temporary YAML file."""
    with tempfile.TemporaryDirectory(prefix="dlx-kfp-") as tmp:
        if isinstance(topic, Suite):
            yield str(compile_suite(topic, Path(tmp), deployment))
        else:
            yield str(compile_topic(topic, Path(tmp), deployment, sweep_parallel))


def _schedule(run: Any) -> Schedule:
    cron = run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else ""
    created = run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else ""
    return Schedule(run.recurring_run_id, run.display_name or "", run.status or "", cron,
                    str(run.max_concurrency or ""), created)


def _innermost(exc: BaseException) -> str:
    """The root cause's words, e.g. 'Connection refused' rather than urllib3's pool report."""
    exc = getattr(exc, "reason", None) or exc
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return getattr(exc, "strerror", None) or str(exc)


def _message(body: Any) -> str:
    """The server's error message (JSON "message" or "error"), on one line."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
        text = str(data.get("message") or data.get("error") or text) if isinstance(data, dict) else text
    except ValueError:
        pass
    return " ".join(text.split())[:300]
