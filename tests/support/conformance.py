"""Checks that every response a test receives conforms to the served blueprint (openapi-core).

The document is the one the app serves at ``/openapi.json``, which declares every error status
the datastore can answer an operation with (``datastore/blueprint/publish.py``). A response
whose status the operation declares is validated against that declaration (body schema,
content type, problem schema); an error status the operation does not declare fails. Every
error must also be a problem+json object with the datastore's shape. Requests outside the
document's paths and methods (404, 405) get the problem shape check only.

Squiz blueprints write draft-07 schemas (``type: ["null", "string"]``) under OpenAPI 3.0, which
openapi-core's 3.0 validator rejects; the conformance copy is therefore raised to 3.1 (whose
schema dialect accepts them), with 3.0's ``nullable`` rewritten into type lists.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict


def _as_31(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _as_31(v) for k, v in node.items()}
        if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_as_31(v) for v in node]
    return node


class _Request:
    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(url.query, keep_blank_values=True)),
            header=Headers(list(request.headers.items())),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("content-type", "").lower()
        self.data = response.content or None


class Conformance:
    """Validates responses against one blueprint document."""

    def __init__(self, document: dict[str, Any], base_path: str = "") -> None:
        doc = _as_31(copy.deepcopy(document))
        doc["openapi"] = "3.1.0"
        doc["servers"] = [{"url": base_path or "/"}]
        config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
        self.openapi = OpenAPI.from_dict(doc, config=config)

    def check(self, response: httpx.Response) -> None:
        """Raise AssertionError when ``response`` does not conform."""
        request = _Request(response.request)
        status = response.status_code
        if status >= 400 or status == 304:
            self._check_problem_or_declared(request, response)
            return
        checked = _Response(response)
        if "page[" in str(response.request.url.query, "latin-1") or "page%5B" in str(
            response.request.url
        ):
            # SPEC §5: paged listings wrap the declared array as {"data": [...], "links": ...}.
            body = json.loads(response.content)
            assert set(body) == {"data", "links"}, body
            assert set(body["links"]) == {"prev", "next"}, body["links"]
            for link in body["links"].values():
                assert link is None or (isinstance(link, str) and link.startswith("/")), link
            checked.data = json.dumps(body["data"]).encode()
        try:
            self.openapi.validate_response(request, checked)
        except (PathNotFound, OperationNotFound):
            return  # a system route outside the blueprint (e.g. /__health)
        except Exception as exc:
            raise AssertionError(
                f"{request.method.upper()} {request.path} → {status} does not conform: {exc!r}\n"
                f"body: {response.text[:500]}"
            ) from exc

    def _check_problem_or_declared(self, request: _Request, response: httpx.Response) -> None:
        status = response.status_code
        if status == 304:
            assert not response.content
            return
        assert response.headers["content-type"].startswith("application/problem+json"), (
            status,
            response.headers.get("content-type"),
            response.text[:300],
        )
        body = json.loads(response.content)
        assert isinstance(body, dict) and body.get("status") == str(status), body
        assert isinstance(body.get("title"), str) and body["title"], body
        for param in body.get("invalid-params", []):
            assert set(param) == {"name", "reason"}, param
            assert isinstance(param["name"], str) and isinstance(param["reason"], str), param
        assert status != 500, f"server error: {body}"
        if "%2f" in request.path.lower():
            return  # the server routes the decoded path: another path than the template's
        if status == 405:
            assert response.headers.get("allow"), "a 405 must list the allowed methods"
            return  # the method is not declared for the path the server matched
        try:
            self.openapi.validate_response(request, _Response(response))
        except (PathNotFound, OperationNotFound):
            return  # no such path or method in the document (404 / 405): the shape above
        except ResponseNotFound as exc:
            raise AssertionError(
                f"{request.method.upper()} {request.path} → {status} is not declared by the "
                f"served document: {response.text[:300]}"
            ) from exc
        except Exception as exc:
            # Declared without content is fine for a problem body; a declared schema must hold.
            if "MediaTypeNotFound" in type(exc).__name__ or "content" in str(exc).lower():
                return
            raise AssertionError(f"{status} problem does not conform: {exc!r}") from exc
