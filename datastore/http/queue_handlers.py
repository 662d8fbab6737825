"""Generic handlers of the queue endpoints (``POST /queue/{topic}``,
``GET /queue/{topic}/{id}``) and the operators' ones (``GET /queue``, ``GET /queue/{topic}``,
``POST /queue/{topic}/{id}/_retry``: docs/queues.md)."""

from __future__ import annotations

from starlette.responses import Response

from datastore.errors import BadRequest, InvalidParam, ValidationFailed
from datastore.http.endpoint import Call
from datastore.http.requests import read_json
from datastore.http.shaping import json_response, maybe_body, pick_status
from datastore.limits import MAX_DEAD_LISTED
from datastore.queue.service import check_topic, job_json


def _topic(call: Call) -> str:
    param = call.op.segments[1].param or "topic"
    return check_topic(str(call.path_params[param]), param)


def _job_id(call: Call) -> str:
    return str(call.path_params[call.op.segments[2].param or "id"])


async def enqueue(call: Call) -> Response:
    """POST a job: stored durably, 201 ``{"_id", "topic"}``."""
    topic = _topic(call)
    payload = await read_json(call)
    schema = call.endpoint.request_schema
    if schema is not None:
        problems = schema.errors(payload)
        if problems:
            raise ValidationFailed(invalid_params=problems)
    job = await call.space.queues.enqueue(topic, payload)
    status, with_body = pick_status(call.op, [201])
    return maybe_body({"_id": job.id, "topic": job.topic}, status, with_body)


async def job_status(call: Call) -> Response:
    """GET a job's status, attempts and last error."""
    topic = _topic(call)
    job = await call.space.queues.get(topic, _job_id(call))
    return json_response(job_json(job))


async def list_topics(call: Call) -> Response:
    """GET ``/queue``: every topic holding jobs, with its jobs by status."""
    topics = await call.space.queues.topics()
    return json_response([{"topic": name, "counts": counts} for name, counts in topics.items()])


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_DEAD_LISTED:
        reason = f"must be a whole number from 1 to {MAX_DEAD_LISTED}"
        raise BadRequest(invalid_params=[InvalidParam("limit", reason)])
    return int(raw)


async def queue_summary(call: Call) -> Response:
    """GET ``/queue/{topic}``: the topic's jobs by status and its newest dead letters."""
    topic = _topic(call)
    limit = _limit(call.request.query_params.get("limit"))
    counts, dead = await call.space.queues.summary(topic, limit)
    return json_response(
        {"topic": topic, "counts": counts, "dead": [job_json(job) for job in dead]}
    )


async def retry_job(call: Call) -> Response:
    """POST ``/queue/{topic}/{id}/_retry``: a dead job queued again."""
    topic = _topic(call)
    job = await call.space.queues.retry(topic, _job_id(call))
    return json_response(job_json(job))
