"""The worker: claims are exclusive across concurrent workers, failures keep the error's code,
detail and context, inputs are verified against their digests, jobs a stopped worker left
running are queued again or failed, a stopping worker hands its job back, and the worker
threads the server starts run queued jobs by themselves."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from registry.db.session import unit_of_work
from registry.jobs import lifecycle
from registry.jobs.models import Job
from registry.jobs.worker import JobWorker, claim, execute, run_one, sweep
from registry.settings import JobsSettings
from registry.storage import keys
from tests.jobs.conftest import World


def test_concurrent_workers_never_claim_the_same_job(world: World) -> None:
    made = {world.submit(world.compose()).json()["id"] for _ in range(8)}
    start = threading.Barrier(2)
    claimed: list[list[str]] = [[], []]

    def work(n: int) -> None:
        start.wait()
        while (job := claim(world.env)) is not None:
            claimed[n].append(str(job.id))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(made)
    assert {world.job(i)["attempts"] for i in made} == {1}


def test_a_failure_keeps_the_errors_code_detail_and_context(world: World) -> None:
    target = f"{world.namespace}/same"
    first = world.submit(world.compose(target=target)).json()
    second = world.submit(world.compose(target=target)).json()
    run_one(world.env)
    run_one(world.env)
    assert world.job(first["id"])["state"] == "succeeded"
    failed = world.job(second["id"])
    assert failed["state"] == "failed"
    assert failed["error"]["code"] == "version_exists"  # the same content, already v1
    assert failed["error"]["context"]["ref"] == f"{target}@v1"
    assert failed["error"]["detail"]
    assert failed["result"] is None


def test_a_stored_input_that_does_not_match_its_digest_fails_the_job(world: World) -> None:
    namespace_name, version = world.inputs[0].split("@")
    files = world.client.get(f"/api/v1/adapters/{namespace_name}/versions/{version}").json()
    weights = next(f for f in files["files"] if f["name"].endswith(".safetensors"))
    blob = Path(world.env.settings.storage.root) / keys.blob_key("", weights["digest"][7:])
    original = blob.read_bytes()
    job = world.submit(world.compose()).json()
    try:
        blob.write_bytes(original[:-4] + b"\0\0\0\0")
        run_one(world.env)
    finally:
        blob.write_bytes(original)
    failed = world.job(job["id"])
    assert (failed["state"], failed["error"]["code"]) == ("failed", "integrity_failure")
    assert world.client.get(f"/api/v1/adapters/{job['target']}").status_code == 404


def test_a_failure_that_is_no_registry_error_is_job_failed() -> None:
    body = lifecycle.error_body(RuntimeError("disk on fire at /secret/path"))
    assert body["code"] == "job_failed"
    assert "/secret/path" not in str(body)


def _age(world: World, job_id: uuid.UUID, *, attempts: int | None = None) -> None:
    """Make the running job's heartbeat an hour old (its worker "crashed")."""
    with unit_of_work(world.env.sessions.write) as session:
        row = session.get_one(Job, job_id)
        row.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)
        if attempts is not None:
            row.attempts = attempts


def test_a_job_left_running_by_a_stopped_worker_is_queued_again_then_failed(
    world: World,
) -> None:
    env = dataclasses.replace(
        world.env,
        settings=world.env.settings.model_copy(update={"jobs": JobsSettings(max_attempts=2)}),
    )
    job = world.submit(world.compose()).json()
    claimed = claim(env)
    assert claimed is not None
    assert sweep(env) == []  # its heartbeat is fresh
    _age(world, claimed.id)
    assert sweep(env) == [(claimed.id, "queued")]
    requeued = world.job(job["id"])
    assert (requeued["state"], requeued["started_at"], requeued["attempts"]) == ("queued", None, 1)
    claimed = claim(env)
    assert claimed is not None
    _age(world, claimed.id)
    assert sweep(env) == [(claimed.id, "failed")]
    failed = world.job(job["id"])
    assert (failed["state"], failed["attempts"]) == ("failed", 2)
    assert (failed["error"]["code"], failed["error"]["context"]["reason"]) == (
        "job_failed",
        "abandoned",
    )
    # The worker that was running it finishes late: its outcome is dropped, nothing changes.
    execute(env, claimed)
    assert world.job(job["id"])["state"] == "failed"


def test_a_stopping_worker_hands_its_job_back(world: World) -> None:
    job = world.submit(world.compose()).json()
    stopping = threading.Event()
    stopping.set()
    assert str(run_one(world.env, stopping)) == job["id"]
    back = world.job(job["id"])
    assert (back["state"], back["attempts"]) == ("queued", 1)
    assert str(run_one(world.env)) == job["id"]
    assert world.job(job["id"])["state"] == "succeeded"


def test_the_worker_threads_run_queued_jobs(world: World) -> None:
    env = dataclasses.replace(
        world.env,
        settings=world.env.settings.model_copy(
            update={"jobs": JobsSettings(concurrency=2, poll_s=0.05)}
        ),
    )
    jobs = [world.submit(world.compose()).json()["id"] for _ in range(2)]
    worker = JobWorker(env)
    worker.start()
    try:
        for _ in range(600):  # a hang guard, not a speed assertion
            if all(world.job(j)["state"] == "succeeded" for j in jobs):
                break
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [world.job(j)["state"] for j in jobs] == ["succeeded", "succeeded"]
