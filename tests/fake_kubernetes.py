"""A small fake of the Kubernetes API with Kubeflow Trainer installed, over HTTP on loopback.

It serves what Kubeflow Trainer's SDK reads (the trainer's version ConfigMap, the
torch-distributed ClusterTrainingRuntime, TrainJobs, their pods) and records every request body.
A created TrainJob is run the way Trainer's torch plugin runs one: each of its numNodes nodes as
a process of the trainer's command and args, with the trainer's env and the rendezvous in
PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR and PET_MASTER_PORT (here on loopback); the job's
status turns Complete when every node exits 0, Failed otherwise.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GROUP = "/apis/trainer.kubeflow.org/v1alpha1"
RUNTIME = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torch-distributed", "labels": {"trainer.kubeflow.org/framework": "torch"}},
    "spec": {"mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
             "template": {"spec": {"replicatedJobs": [{
                 "name": "node", "replicas": 1,
                 "template": {"metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                              "spec": {"template": {"spec": {"containers": [{
                                  "name": "node", "image": "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime",
                                  "command": ["/bin/bash", "-c", "echo"]}]}}}}}]}}},
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeKubernetes:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
        self.jobs: dict[str, dict] = {}
        self.logs: dict[str, list[str]] = {}
        self.env = env or {}
        self._threads: list[threading.Thread] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append(("GET", self.path, None))
                path = self.path.split("?")[0]
                if path == "/api/v1/namespaces/kubeflow-system/configmaps/kubeflow-trainer-public":
                    return self._reply(200, {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
                        "name": "kubeflow-trainer-public", "namespace": "kubeflow-system"},
                        "data": {"kubeflow_trainer_version": "v2.1.0"}})
                if path == f"{GROUP}/clustertrainingruntimes/torch-distributed":
                    return self._reply(200, RUNTIME)
                if re.fullmatch(r"/api/v1/namespaces/[^/]+/pods", path):
                    return self._reply(200, {"kind": "PodList", "apiVersion": "v1", "items": []})
                match = re.fullmatch(rf"{GROUP}/namespaces/([^/]+)/trainjobs/([^/]+)", path)
                if match and match.group(2) in fake.jobs:
                    return self._reply(200, fake.jobs[match.group(2)])
                return self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "reason": "NotFound", "code": 404})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST", self.path, body))
                match = re.fullmatch(rf"{GROUP}/namespaces/([^/]+)/trainjobs", self.path)
                if not match:
                    return self._reply(404, {"kind": "Status", "code": 404})
                name = body["metadata"]["name"]
                job = json.loads(json.dumps(body))
                job["metadata"].update(namespace=match.group(1),
                                       creationTimestamp=_now())
                fake.jobs[name] = job
                thread = threading.Thread(target=fake._run, args=(name,), daemon=True)
                thread.start()
                fake._threads.append(thread)
                return self._reply(201, job)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _run(self, name: str) -> None:
        trainer = self.jobs[name]["spec"]["trainer"]
        nodes, port = trainer.get("numNodes", 1), _free_port()
        command = [sys.executable if part == "python" else part for part in trainer["command"]] + trainer.get("args", [])
        env = {**os.environ, **self.env, **{e["name"]: e["value"] for e in trainer.get("env", [])}}
        processes = [subprocess.Popen(command, env={**env, "PET_NNODES": str(nodes), "PET_NODE_RANK": str(rank),
                                                    "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for rank in range(nodes)]
        self.logs[name] = [p.communicate()[0] for p in processes]
        ok = all(p.returncode == 0 for p in processes)
        self.jobs[name]["status"] = {"conditions": [{"type": "Complete" if ok else "Failed", "status": "True",
                                                     "reason": "JobsCompleted" if ok else "JobsFailed",
                                                     "message": "", "lastTransitionTime": _now()}]}

    def posted(self) -> list[tuple[str, dict]]:
        return [(path, body) for method, path, body in self.requests if method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        for thread in self._threads:
            thread.join(timeout=60)
