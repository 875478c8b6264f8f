"""The `_security` API: users, roles, API keys and `_authenticate`, in Elasticsearch 8's wire format.

Thin: each handler reads the request and shapes the answer. Authorization and every rule live in
`security.admin.SecurityAdmin`, reached through the session. Path parameters are named `{id}`
(the router's example table), whatever Elasticsearch calls them (username, name).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...errors import ActionRequestValidationError, RequestError
from ...security.admin import KeyQuery, key_ids, split_names
from . import Call

WRITE_PARAMS = ("refresh",)
GET_USER_PARAMS = ("with_profile_uid",)
GET_API_KEY_PARAMS = ("id", "name", "owner", "username", "realm_name", "active_only", "with_limited_by",
                      "with_profile_uid")
INVALIDATE_KEYS = {"id", "ids", "name", "owner", "username", "realm_name"}


async def authenticate(call: Call) -> Response:
    return call.json(await call.session.security().authenticate())


# -- users ---------------------------------------------------------------------------------------
async def put_user(call: Call) -> Response:
    call.params.refresh()  # Accepted and checked; every change is durable and visible when answered.
    created = await call.session.security().put_user(call.path["id"], call.json_body(required=True))
    return call.json({"created": created})


async def get_user(call: Call) -> Response:
    names = split_names(call.path.get("id"))
    users = await call.session.security().get_users(names)
    # Like Elasticsearch: naming only unknown users answers 404 with an empty object.
    return call.json(users, 404 if names and not users else 200)


async def delete_user(call: Call) -> Response:
    call.params.refresh()
    found = await call.session.security().delete_user(call.path["id"])
    return call.json({"found": found}, 200 if found else 404)


async def change_password(call: Call) -> Response:
    call.params.refresh()
    await call.session.security().change_password(call.path.get("id"), call.json_body(required=True))
    return call.json({})


async def enable_user(call: Call) -> Response:
    call.params.refresh()
    await call.session.security().set_enabled(call.path["id"], True)
    return call.json({})


async def disable_user(call: Call) -> Response:
    call.params.refresh()
    await call.session.security().set_enabled(call.path["id"], False)
    return call.json({})


# -- roles ---------------------------------------------------------------------------------------
async def put_role(call: Call) -> Response:
    call.params.refresh()
    created = await call.session.security().put_role(call.path["id"], call.json_body(required=True))
    return call.json({"role": {"created": created}})


async def get_role(call: Call) -> Response:
    names = split_names(call.path.get("id"))
    roles = await call.session.security().get_roles(names)
    return call.json(roles, 404 if names and not roles else 200)


async def delete_role(call: Call) -> Response:
    call.params.refresh()
    found = await call.session.security().delete_role(call.path["id"])
    return call.json({"found": found}, 200 if found else 404)


# -- API keys ------------------------------------------------------------------------------------
async def create_api_key(call: Call) -> Response:
    call.params.refresh()
    return call.json(await call.session.security().create_api_key(call.json_body(required=True)))


async def get_api_key(call: Call) -> Response:
    params = call.params
    key_id = params.str("id")
    query = KeyQuery(ids=(key_id,) if key_id else (), name=params.str("name") or None,
                     owner=params.bool("owner"), username=params.str("username") or None,
                     realm_name=params.str("realm_name") or None, active_only=params.bool("active_only"))
    params.bool("with_profile_uid")  # Checked, then ignored: Strongroom has no user profiles.
    keys = await call.session.security().get_api_keys(query, with_limited_by=params.bool("with_limited_by"))
    return call.json({"api_keys": keys})


async def invalidate_api_key(call: Call) -> Response:
    body: dict[str, Any] = call.json_body(required=True)
    unknown = set(body) - INVALIDATE_KEYS
    if unknown:
        raise RequestError(f"failed to parse invalidate api key request. unexpected field [{min(unknown)}]")
    if body.get("id") is not None and body.get("ids") is not None:
        raise ActionRequestValidationError("Must use either [id] or [ids], not both at the same time")
    ids = body.get("ids")
    if ids is not None and not isinstance(ids, list):
        raise RequestError("failed to parse invalidate api key request. [ids] must be an array")
    owner = body.get("owner", False)
    if not isinstance(owner, bool):
        raise RequestError("failed to parse invalidate api key request. [owner] must be a boolean")
    for field in ("id", "name", "username", "realm_name"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise RequestError(f"failed to parse invalidate api key request. [{field}] must be a string")
    query = KeyQuery(ids=key_ids(ids if ids is not None else [body["id"]] if body.get("id") else []),
                     name=body.get("name") or None, owner=owner, username=body.get("username") or None,
                     realm_name=body.get("realm_name") or None)
    return call.json(await call.session.security().invalidate_api_keys(query))
