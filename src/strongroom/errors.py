"""Strongroom errors. Each maps to one HTTP status and one Elasticsearch error type.

* StrongroomError                          500  exception  ("internal error"; details go to the server log only)
  + RequestError                           400  parsing_exception
    - IllegalArgumentError                 400  illegal_argument_exception
    - JsonParseError                       400  x_content_parse_exception
    - MapperParsingError                   400  mapper_parsing_exception
    - StrictDynamicMappingError            400  strict_dynamic_mapping_exception
    - InvalidIndexNameError                400  invalid_index_name_exception
    - ResourceAlreadyExistsError           400  resource_already_exists_exception
    - ActionRequestValidationError         400  action_request_validation_exception
    - NoHandlerError                       400  (ES answers unknown routes with a bare string error)
    - RepositoryError                      400  repository_exception
    - InvalidSnapshotNameError             400  invalid_snapshot_name_exception
    - SnapshotRestoreError                 400  snapshot_restore_exception
  + MethodNotAllowedError                  405
  + PayloadTooLargeError                   413  content_too_long_exception
  + UnsupportedMediaTypeError              406  media_type_header_exception
  + NotFoundError
    - IndexNotFoundError                   404  index_not_found_exception
    - DocumentMissingError                 404  document_missing_exception
    - RepositoryMissingError               404  repository_missing_exception
    - SnapshotMissingError                 404  snapshot_missing_exception
  + VersionConflictError                   409  version_conflict_engine_exception
  + SecurityError
    - AuthenticationError                  401  security_exception
    - AuthorizationError                   403  security_exception
  + TooManyRequestsError                   429  es_rejected_execution_exception  (Retry-After header)
  + UnavailableError                       503  unavailable_shards_exception
    - AuditUnavailableError                503  audit_unavailable_exception
    - ConcurrentSnapshotError              503  concurrent_snapshot_execution_exception
  + RequestTimeoutError                    408  timeout_exception

Messages name only what the caller sent: never a stored value, never a stack, never a path on disk.
"""

from __future__ import annotations

from typing import Any


class StrongroomError(Exception):
    status: int = 500
    es_type: str = "exception"

    def __init__(self, reason: str = "internal error", **metadata: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metadata = metadata  # Extra keys of the Elasticsearch error object (e.g. "index").

    def to_es(self) -> dict[str, Any]:
        """The `error` object of Elasticsearch's error response."""
        cause = {"type": self.es_type, "reason": self.reason, **self.metadata}
        body = {"root_cause": [cause], **cause}
        if self.__cause__ is not None and isinstance(self.__cause__, StrongroomError):
            inner = self.__cause__.to_es()
            inner.pop("root_cause", None)
            body["caused_by"] = inner
        return body

    def headers(self) -> dict[str, str]:
        return {}


class InternalError(StrongroomError):
    """A failure of ours. The reason is generic on purpose; the log has the details."""


class RequestError(StrongroomError):
    status, es_type = 400, "parsing_exception"


class IllegalArgumentError(RequestError):
    es_type = "illegal_argument_exception"


class JsonParseError(RequestError):
    es_type = "x_content_parse_exception"


class MapperParsingError(RequestError):
    es_type = "mapper_parsing_exception"


class StrictDynamicMappingError(RequestError):
    es_type = "strict_dynamic_mapping_exception"

    def __init__(self, path: str, field: str) -> None:
        super().__init__(f"[{path or '_doc'}] mapping is set to strict, dynamic introduction of [{field}] "
                         f"within [{path or '_doc'}] is not allowed")


class InvalidIndexNameError(RequestError):
    es_type = "invalid_index_name_exception"

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Invalid index name [{name}], {why}", index=name, index_uuid="_na_")


class ResourceAlreadyExistsError(RequestError):
    es_type = "resource_already_exists_exception"

    def __init__(self, index: str, uuid: str) -> None:
        super().__init__(f"index [{index}/{uuid}] already exists", index=index, index_uuid=uuid)


class ActionRequestValidationError(RequestError):
    es_type = "action_request_validation_exception"

    def __init__(self, *problems: str) -> None:
        text = "".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
        super().__init__(f"Validation Failed: {text}")


class NoHandlerError(RequestError):
    """Elasticsearch answers an unknown route with a bare string error; we keep its wording."""

    es_type = "no_handler_found_exception"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no handler found for uri [{path}] and method [{method}]")


class RepositoryError(RequestError):
    """A snapshot repository cannot be registered or used (Elasticsearch answers 500; it is the caller's
    setting, so 400 here)."""

    es_type = "repository_exception"

    def __init__(self, repository: str, why: str) -> None:
        super().__init__(f"[{repository}] {why}")


class InvalidSnapshotNameError(RequestError):
    es_type = "invalid_snapshot_name_exception"

    def __init__(self, repository: str, snapshot: str, why: str) -> None:
        super().__init__(f"[{repository}:{snapshot}] Invalid snapshot name [{snapshot}], {why}")


class SnapshotRestoreError(RequestError):
    es_type = "snapshot_restore_exception"

    def __init__(self, repository: str, snapshot: str, why: str) -> None:
        super().__init__(f"[{repository}:{snapshot}] {why}")


class MethodNotAllowedError(StrongroomError):
    status, es_type = 405, "method_not_allowed_exception"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"Incorrect HTTP method for uri [{path}] and method [{method}], "
                         f"allowed: [{', '.join(sorted(allowed))}]")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ",".join(sorted(self.allowed))}


class PayloadTooLargeError(StrongroomError):
    status, es_type = 413, "content_too_long_exception"


class UnsupportedMediaTypeError(StrongroomError):
    status, es_type = 406, "media_type_header_exception"


class NotFoundError(StrongroomError):
    status, es_type = 404, "resource_not_found_exception"


class IndexNotFoundError(NotFoundError):
    es_type = "index_not_found_exception"

    def __init__(self, index: str) -> None:
        super().__init__(f"no such index [{index}]", **{
            "resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index})


class DocumentMissingError(NotFoundError):
    es_type = "document_missing_exception"

    def __init__(self, index: str, uuid: str, shard: int, doc_id: str) -> None:
        super().__init__(f"[{doc_id}]: document missing", shard=str(shard), index=index, index_uuid=uuid)


class RepositoryMissingError(NotFoundError):
    es_type = "repository_missing_exception"

    def __init__(self, repository: str) -> None:
        super().__init__(f"[{repository}] missing")


class SnapshotMissingError(NotFoundError):
    es_type = "snapshot_missing_exception"

    def __init__(self, repository: str, snapshot: str) -> None:
        super().__init__(f"[{repository}:{snapshot}] is missing")


class VersionConflictError(StrongroomError):
    status, es_type = 409, "version_conflict_engine_exception"

    def __init__(self, reason: str, *, index: str, uuid: str, shard: int) -> None:
        super().__init__(reason, index_uuid=uuid, shard=str(shard), index=index)


class SecurityError(StrongroomError):
    es_type = "security_exception"


class AuthenticationError(SecurityError):
    status = 401

    def __init__(self, reason: str = "missing authentication credentials for REST request") -> None:
        super().__init__(reason)

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'}


class AuthorizationError(SecurityError):
    status = 403

    def __init__(self, action: str, principal: str, index: str | None = None) -> None:
        # Same text whether or not the index exists; no role or policy text.
        where = f" on indices [{index}]" if index else ""
        super().__init__(f"action [{action}] is unauthorized for user [{principal}]{where}")


class LimitError(SecurityError):
    """A request beyond a cap of the caller's roles (size, result window, contexts, keep-alive). Retrying
    cannot help, so 403, not 429."""

    status = 403


class FieldSecurityError(SecurityError):
    """A query, sort or aggregation uses a field the caller may not search (hidden, or masked).

    Decided from the caller's role patterns, never from the mapping, so it does not tell whether the
    field exists."""

    status = 403

    def __init__(self, principal: str, field: str, why: str) -> None:
        super().__init__(f"user [{principal}] may not use field [{field}] here: {why}")


class UnavailableError(StrongroomError):
    status, es_type = 503, "unavailable_shards_exception"


class RequestTimeoutError(StrongroomError):
    status, es_type = 408, "timeout_exception"


class ConcurrentSnapshotError(UnavailableError):
    es_type = "concurrent_snapshot_execution_exception"

    def __init__(self, repository: str, snapshot: str, why: str) -> None:
        super().__init__(f"[{repository}:{snapshot}] {why}")


class TooManyRequestsError(StrongroomError):
    """A rate limit, a budget, or a block: nothing of the request was served. `retry_after`: seconds."""

    status, es_type = 429, "es_rejected_execution_exception"

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = max(1, int(retry_after + 0.999))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class AuditUnavailableError(UnavailableError):
    """The audit record of a request could not be written, so the request is refused: nothing is served
    unaudited."""

    es_type = "audit_unavailable_exception"

    def __init__(self) -> None:
        super().__init__("the audit log cannot be written; the request was refused (nothing is served unaudited)")
