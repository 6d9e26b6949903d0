"""JSON batching (``POST /v1.0/$batch``) in the fake Microsoft Graph.

Reference: https://learn.microsoft.com/graph/json-batching
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .graph_common import (
    GRAPH_JSON,
    BatchHook,
    GraphError,
    GraphRequest,
    graph_error_reply,
    parse_query,
)
from .http import Reply

__all__ = ["run_batch"]


def run_batch(
    request: GraphRequest,
    hook: BatchHook,
    max_batch: int,
    dispatch: Callable[[GraphRequest], Reply],
) -> Reply:
    """JSON batching, https://learn.microsoft.com/graph/json-batching.

    Items run in order (dependsOn is honoured; an item whose dependency
    failed gets 424).  Responses are listed in request order; real Graph may
    reorder them, so clients must match on ``id``.  The caller authenticates
    the batch request first.
    """
    payload = request.json_body()
    items = payload.get("requests")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(items) > max_batch:
        raise GraphError(
            400,
            "BadRequest",
            f"The number of batch request steps ({len(items)}) exceeds the maximum of {max_batch}.",
        )
    seen: set[str] = set()
    for item in items:
        item_id = item.get("id")
        complete = isinstance(item_id, str) and item.get("method") and item.get("url")
        if not (complete and item_id):
            raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
        if item_id in seen:
            raise GraphError(400, "BadRequest", f"Batch request id '{item_id}' is not unique.")
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or any(d not in seen for d in depends):
            raise GraphError(
                400,
                "BadRequest",
                f"dependsOn of request '{item_id}' must name earlier requests.",
            )
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        if "body" in item and "content-type" not in headers:
            raise GraphError(
                400,
                "BadRequest",
                f"Write request id : {item_id} does not contain Content-Type header or body.",
            )
        seen.add(item_id)
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        reply = _batch_item(request, item, statuses, hook, dispatch)
        statuses[item["id"]] = reply.status
        entry: dict[str, Any] = {"id": item["id"], "status": reply.status}
        entry["headers"] = dict(reply.headers)
        if reply.body:
            entry["body"] = json.loads(reply.body)
        responses.append(entry)
    return Reply.json(200, {"responses": responses}, (), GRAPH_JSON)


def _batch_item(
    outer: GraphRequest,
    item: Mapping[str, Any],
    statuses: Mapping[str, int],
    hook: BatchHook,
    dispatch: Callable[[GraphRequest], Reply],
) -> Reply:
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    if any(statuses.get(d, 424) >= 400 for d in item.get("dependsOn") or []):
        return graph_error_reply(424, "FailedDependency", "Dependent request failed.", headers)
    # Sub-requests run with the batch's own credentials.
    headers.setdefault("authorization", outer.headers.get("authorization", ""))
    url = str(item["url"])
    if "://" in url:
        return graph_error_reply(
            400, "BadRequest", "Batch request URLs must be relative to the version.", headers
        )
    path, _, query_string = url.lstrip("/").partition("?")
    body = item.get("body")
    raw_body = (
        b""
        if body is None
        else (
            json.dumps(body).encode("utf-8") if not isinstance(body, str) else body.encode("utf-8")
        )
    )
    method = str(item["method"]).upper()
    sub = GraphRequest(method, "/" + path, parse_query(query_string), headers, raw_body)
    target = f"/v1.0/{path}" + (f"?{query_string}" if query_string else "")

    def run() -> Reply:
        if [s.lower() for s in sub.segments] == ["$batch"]:
            return graph_error_reply(400, "BadRequest", "Batches cannot be nested.", headers)
        return dispatch(sub)

    return hook(str(item["id"]), method, target, headers, raw_body, run)
