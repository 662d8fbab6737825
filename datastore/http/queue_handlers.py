"""Generic handlers of the queue endpoints (``POST /queue/{topic}``,
``GET /queue/{topic}/{id}``)."""

from __future__ import annotations

from starlette.responses import Response

from datastore.errors import ValidationFailed
from datastore.http.endpoint import Call
from datastore.http.requests import read_json
from datastore.http.shaping import json_response, maybe_body, pick_status
from datastore.queue.service import check_topic, job_json


def _topic(call: Call) -> str:
    param = call.op.segments[1].param or "topic"
    return check_topic(str(call.path_params[param]), param)


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
    job_id = str(call.path_params[call.op.segments[2].param or "id"])
    job = await call.space.queues.get(topic, job_id)
    return json_response(job_json(job))
