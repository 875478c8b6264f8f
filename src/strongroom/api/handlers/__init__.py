"""Route handlers. Each receives a `Call`: an authenticated session, path and URL parameters, body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...security.session import Session
from ..wire import Params, json_response, parse_json_body


@dataclass
class Call:
    request: Request
    session: Session
    path: dict[str, str]
    params: Params
    body: bytes

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(self.request, body, status, headers)

    def json_body(self, *, required: bool = False) -> Any:
        return parse_json_body(self.body, required=required)


def shards_header(total: int, successful: int | None = None, failed: int = 0) -> dict[str, int]:
    return {"total": total, "successful": total if successful is None else successful, "failed": failed}
