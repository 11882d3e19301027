"""Load-test Jobs: deterministic, owned, idempotent; built as plain dicts.

Pure. A :class:`~controller.stepper.RunLoadTest` becomes one Job named
``<canary>-load-<hash of (canary revision, step, look)>`` (at most 63 characters), so a
controller restarted at any point finds the Job it created instead of creating a second
one. The Job carries an ownerReference to the Canary (it goes with it) and the labels
``gatekeeper.dev/canary`` and ``gatekeeper.dev/load-test``. Its container runs the
load test's image with the command template rendered item by item: every item is one argv
entry (no shell ever sees it), placeholders ``{{rps}}``, ``{{rpsPerWorker}}``,
``{{concurrency}}``, ``{{duration}}`` (whole seconds), ``{{url}}``, ``{{namespace}}``,
``{{name}}`` are replaced by their values and nothing else is interpreted.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.model import GROUP, LOAD_TEST_RPS_PER_WORKER, LoadTest
from controller.resources import Object
from controller.workloads import CANARY_LABEL, MANAGED_BY, Names

LOAD_TEST_LABEL = f"{GROUP}/load-test"
REVISION_ANNOTATION = f"{GROUP}/revision"
MAX_NAME = 63
_HASH_LENGTH = 10
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
#: A Job that has not finished this long after its planned end is stopped by Kubernetes.
DEADLINE_GRACE_SECONDS = 300
#: Finished Jobs are deleted by the controller; this is the cluster's safety net.
TTL_AFTER_FINISHED_SECONDS = 3600


def job_name(*, canary: str, revision: str, step_index: int, look: int) -> str:
    """``<canary>-load-<10 hex>``, at most 63 characters, the same for the same inputs."""
    digest = hashlib.sha256(f"{revision}/{step_index}/{look}".encode()).hexdigest()
    suffix = f"-load-{digest[:_HASH_LENGTH]}"
    prefix = canary[: MAX_NAME - len(suffix)].rstrip("-.")
    return f"{prefix}{suffix}"


def concurrency(load: LoadTest) -> int:
    """Workers of the load generator: given, or one per LOAD_TEST_RPS_PER_WORKER requests/s."""
    if load.concurrency is not None:
        return load.concurrency
    return max(1, math.ceil(load.rps / LOAD_TEST_RPS_PER_WORKER))


def default_url(*, names: Names, namespace: str, port: int) -> str:
    """The ``-canary`` Service's in-cluster URL."""
    return f"http://{names.canary_service}.{namespace}.svc:{port}/"


def _number(value: float) -> str:
    return f"{value:.6g}" if value != int(value) else str(int(value))


def command_values(load: LoadTest, *, url: str, namespace: str, name: str) -> dict[str, str]:
    """The placeholder values of a load test."""
    workers = concurrency(load)
    return {
        "rps": _number(load.rps),
        "rpsPerWorker": _number(round(load.rps / workers, 3)),
        "concurrency": str(workers),
        "duration": str(max(1, math.ceil(load.duration_seconds))),
        "url": url,
        "namespace": namespace,
        "name": name,
    }


def render_command(template: tuple[str, ...], *, values: Mapping[str, str]) -> list[str]:
    """The argv list: each item with its ``{{placeholder}}`` slots filled, nothing else."""
    return [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), t) for t in template]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """Where a load test's Job runs and what identifies it."""

    namespace: str
    names: Names
    revision: str
    step_index: int
    look: int
    port: int
    owner: Mapping[str, Any]


def job_body(load: LoadTest, *, where: JobSpec) -> Object:
    """The Job of a load test."""
    name = job_name(
        canary=where.names.canary,
        revision=where.revision,
        step_index=where.step_index,
        look=where.look,
    )
    url = load.url or default_url(names=where.names, namespace=where.namespace, port=where.port)
    values = command_values(load, url=url, namespace=where.namespace, name=where.names.canary)
    labels = {CANARY_LABEL: where.names.canary, LOAD_TEST_LABEL: name, MANAGED_BY[0]: MANAGED_BY[1]}
    duration = math.ceil(load.duration_seconds)
    container = {
        "name": "load",
        "image": load.image,
        "command": render_command(load.command, values=values),
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": where.namespace,
            "labels": labels,
            "annotations": {
                REVISION_ANNOTATION: where.revision,
                f"{GROUP}/step": str(where.step_index),
                f"{GROUP}/look": str(where.look),
            },
            "ownerReferences": [dict(where.owner)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": duration + DEADLINE_GRACE_SECONDS,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                    "containers": [container],
                },
            },
        },
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """A finished Job: whether it succeeded, and why not."""

    succeeded: bool
    message: str = ""


def job_result(job: Mapping[str, Any]) -> JobResult | None:
    """The result of a finished Job; None while it runs (or has not started)."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobResult(succeeded=True)
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "Failed"
            return JobResult(succeeded=False, message=f"{reason}: {condition.get('message', '')}")
    if int(status.get("succeeded") or 0) > 0:
        return JobResult(succeeded=True)
    return None


def owned_by(job: Mapping[str, Any], *, canary: str) -> bool:
    """Whether a Job is a load test of this Canary (by its labels)."""
    labels = job.get("metadata", {}).get("labels") or {}
    return labels.get(CANARY_LABEL) == canary and LOAD_TEST_LABEL in labels
