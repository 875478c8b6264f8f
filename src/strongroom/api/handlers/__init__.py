"""Route handlers. Each receives a `Call`: an authenticated session, path and URL parameters, body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...security.session import Session
from ...errors import IllegalArgumentError, UnavailableError
from ..wire import Params, json_response, parse_json_body


@dataclass
class Call:
    request: Request
    session: Session
    path: dict[str, str]
    params: Params
    body: bytes
    parsed: Any = None  # the body as `json_body` parsed it (kept so the audit does not parse it again)

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(self.request, body, status, headers)

    def json_body(self, *, required: bool = False) -> Any:
        self.parsed = parse_json_body(self.body, required=required)
        return self.parsed


def shards_header(total: int, successful: int | None = None, failed: int = 0) -> dict[str, int]:
    return {"total": total, "successful": total if successful is None else successful, "failed": failed}


def check_active_shards(call: Call) -> None:
    """A single node holds one copy of each shard: asking for more active copies cannot succeed."""
    wanted = call.params.str("wait_for_active_shards")
    if wanted is None or wanted == "all":
        return
    try:
        needed = int(wanted)
    except ValueError:
        raise IllegalArgumentError(f"Failed to parse int parameter [wait_for_active_shards] with value "
                                   f"[{wanted}]") from None
    if needed > 1:
        timeout = call.params.str("timeout", "1m")
        raise UnavailableError(f"Not enough active copies to meet shard count of [{needed}] (have 1, needed "
                               f"{needed}). Timeout: [{timeout}]")
