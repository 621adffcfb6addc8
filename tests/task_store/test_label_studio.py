"""The Label Studio export imported into a real Label Studio (PyPI `label-studio`),
started by the test: the tasks arrive with their text, meta and predictions.

Runs only where Label Studio is installed: importable by this interpreter, or its
`label-studio` executable named by SYNTHTASKS_TEST_LABEL_STUDIO (a separate virtualenv:
Label Studio pins Django and many other packages). Neither the project's dependencies
nor CI install it, so in CI this test is skipped; where it is installed, a failure is
a failure."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from synthtasks.v1 import task_service_pb2 as task_pb2

from synthtasks_cli.labeling import labeling_config
from tests.task_store.test_export_annotations import BODY, LABELS, MODEL, SPANS, annotated_project, import_all

START_TIMEOUT_SECONDS = 240
TOKEN = "synthtasks0test0label0studio0token"


def label_studio_command() -> list[str] | None:
    named = os.environ.get("SYNTHTASKS_TEST_LABEL_STUDIO")
    if named:
        return [named]
    if importlib.util.find_spec("label_studio") is not None:
        return [sys.executable, "-m", "label_studio.server"]
    return None


pytestmark = pytest.mark.skipif(
    label_studio_command() is None,
    reason="Label Studio is not installed (pip install label-studio, or set SYNTHTASKS_TEST_LABEL_STUDIO)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LabelStudio:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read() or b"null")


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory) -> Iterator[LabelStudio]:
    command = label_studio_command()
    assert command is not None
    data = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    with open(data / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                *command,
                "start",
                "--no-browser",
                "--data-dir",
                str(data),
                "--port",
                str(port),
                "--internal-host",
                "127.0.0.1",
                "--username",
                "synthtasks@example.com",
                "--password",
                "synthtasks-test-password",
                "--user-token",
                TOKEN,
                "--enable-legacy-api-token",
            ],
            env={**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "HOME": str(data)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while True:
                assert process.poll() is None, (data / "server.log").read_text(errors="replace")[-4000:]
                try:
                    with urllib.request.urlopen(base + "/health", timeout=5) as reply:
                        if reply.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError):
                    pass
                assert time.monotonic() < deadline, "Label Studio did not start in time"
                time.sleep(0.5)  # polling a server that is starting: a bounded wait for a condition
            yield LabelStudio(base)
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=60)
            shutil.rmtree(data, ignore_errors=True)


def test_exported_tasks_load_into_label_studio_with_their_predictions(jobs, tasks, project, label_studio):
    job = annotated_project(jobs, tasks, project)
    import_all(tasks, project)
    options = task_pb2.ExportOptions(label_studio_from_name="ner", label_studio_to_name="note")
    exported = json.loads(
        b"".join(
            chunk.data
            for chunk in tasks.ExportTasks(
                task_pb2.ExportTasksRequest(
                    parent=f"projects/{project}", format=task_pb2.EXPORT_FORMAT_LABEL_STUDIO, options=options
                )
            )
        )
    )
    config = labeling_config([(label.name, label.description) for label in LABELS], from_name="ner", to_name="note")
    created = label_studio.call("POST", "/api/projects", {"title": project, "label_config": config})

    imported = label_studio.call("POST", f"/api/projects/{created['id']}/import", exported)

    assert (imported["task_count"], imported["prediction_count"]) == (1, 1)
    (task,) = label_studio.call("GET", f"/api/tasks?project={created['id']}&fields=all")["tasks"]
    assert task["data"] == {"text": BODY}
    assert task["meta"]["synthetic"] is True and task["meta"]["generation_job"] == job.name
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == MODEL
    assert [
        (r["from_name"], r["to_name"], r["value"]["start"], r["value"]["end"], r["value"]["labels"])
        for r in prediction["result"]
    ] == [("ner", "note", s.start, s.end, [s.label]) for s in SPANS]
    # Label Studio's Text tag reads offsets as Python does (code points).
    assert all(BODY[r["value"]["start"] : r["value"]["end"]] == r["value"]["text"] for r in prediction["result"])
