"""A small HTTPS JSON client for Strongroom's own command-line tools (standard library only)."""

from __future__ import annotations

import base64
import http.client
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson


class ClientError(Exception):
    def __init__(self, status: int, body: Any, retry_after: float | None = None) -> None:
        reason = body.get("error", {}).get("reason") if isinstance(body, dict) and isinstance(body.get("error"),
                                                                                              dict) else body
        super().__init__(f"HTTP {status}: {reason}")
        self.status, self.body, self.retry_after = status, body, retry_after


@dataclass
class StrongroomClient:
    url: str
    user: str
    password: str
    ca_certs: Path | None = None
    timeout: float = 120.0
    api_key: str | None = None  # the `encoded` form (base64 of id:secret); used instead of user and password

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http"):
            raise ValueError(f"unsupported URL scheme in {self.url}")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 9200
        self._tls = parts.scheme == "https"
        if self.api_key:
            authorization = f"ApiKey {self.api_key}"
        else:
            authorization = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        self._headers = {"Authorization": authorization, "Content-Type": "application/json",
                         "Accept": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._tls:
                context = ssl.create_default_context(cafile=str(self.ca_certs) if self.ca_certs else None)
                self._conn = http.client.HTTPSConnection(self._host, self._port, context=context,
                                                         timeout=self.timeout)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return self._conn

    def request(self, method: str, path: str, body: Any = None, *, ndjson: bytes | None = None,
                ok: tuple[int, ...] = (200, 201)) -> Any:
        headers = dict(self._headers)
        payload = None
        if ndjson is not None:
            payload = ndjson
            headers["Content-Type"] = "application/x-ndjson"
        elif body is not None:
            payload = orjson.dumps(body)
        conn = self._connection()
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        parsed = orjson.loads(raw) if raw and response.getheader("content-type", "").find("json") >= 0 else raw
        if response.status not in ok:
            retry = response.getheader("retry-after")
            raise ClientError(response.status, parsed,
                              float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)
        return parsed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
