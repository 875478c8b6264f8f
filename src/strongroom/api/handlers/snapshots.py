"""`_snapshot`: fs repositories, snapshot create/get/status/delete, restore, in Elasticsearch's shapes."""

from __future__ import annotations

from starlette.responses import Response

from . import Call

COMMON = ("master_timeout", "timeout", "cluster_manager_timeout")
REPOSITORY_PARAMS = (*COMMON, "verify", "local")
CREATE_PARAMS = (*COMMON, "wait_for_completion")
DELETE_PARAMS = (*COMMON, "wait_for_completion")
GET_PARAMS = (*COMMON, "ignore_unavailable", "verbose", "index_details", "include_repository", "sort", "order",
              "size", "offset", "from_sort_value", "after", "slm_policy_filter", "index_names")


def _names(call: Call, key: str) -> list[str]:
    return [part.strip() for part in (call.path.get(key) or "").split(",") if part.strip()]


async def put_repository(call: Call) -> Response:
    await call.session.snapshots().put_repository(call.path["repository"], call.json_body(required=True),
                                                  verify=call.params.bool("verify", True))
    return call.json({"acknowledged": True})


async def get_repository(call: Call) -> Response:
    return call.json(call.session.snapshots().get_repositories(_names(call, "repository")))


async def delete_repository(call: Call) -> Response:
    call.session.snapshots().delete_repository(_names(call, "repository"))
    return call.json({"acknowledged": True})


async def verify_repository(call: Call) -> Response:
    return call.json(await call.session.snapshots().verify_repository(call.path["repository"]))


async def cleanup_repository(call: Call) -> Response:
    return call.json({"results": await call.session.snapshots().cleanup_repository(call.path["repository"])})


async def create(call: Call) -> Response:
    wait = call.params.bool("wait_for_completion")
    info = await call.session.snapshots().create(call.path["repository"], call.path["snapshot"], call.json_body(),
                                                 wait=wait)
    return call.json({"accepted": True} if info is None else {"snapshot": info})


async def get(call: Call) -> Response:
    snapshots = call.session.snapshots().get(call.path["repository"], _names(call, "snapshot"),
                                             ignore_unavailable=call.params.bool("ignore_unavailable"))
    if not call.params.bool("verbose", True):
        keep = ("snapshot", "uuid", "repository", "indices", "data_streams", "state")
        snapshots = [{k: s[k] for k in keep if k in s} for s in snapshots]
    return call.json({"snapshots": snapshots, "total": len(snapshots), "remaining": 0})


async def status(call: Call) -> Response:
    repository = call.path.get("repository")
    statuses = call.session.snapshots().status(repository, _names(call, "snapshot"),
                                               ignore_unavailable=call.params.bool("ignore_unavailable"))
    return call.json({"snapshots": statuses})


async def delete(call: Call) -> Response:
    await call.session.snapshots().delete(call.path["repository"], _names(call, "snapshot"))
    return call.json({"acknowledged": True})


async def restore(call: Call) -> Response:
    answer = await call.session.snapshots().restore(call.path["repository"], call.path["snapshot"],
                                                    call.json_body(), wait=call.params.bool("wait_for_completion"))
    return call.json({"accepted": True} if answer is None else {"snapshot": answer})
