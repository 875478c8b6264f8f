"""`strongroom load`: stream a file into an index over the API, protecting personal data before it lands.

Order: open the file (readers.py) → if the index is new, sample it and propose a mapping that
protects every column that looks personal (propose.py; `--plan` prints it and stops, `--yes`
accepts it, `--mapping FILE` brings one, checked the same way) — an existing index's mapping is
checked too, so a personal column never lands unprotected unless named in `--allow-plain` → send
`_bulk` batches sized by bytes, in file order, each retried with backoff on 429/503 and on
connection errors → after each acknowledged batch, append its rejected rows to the reject file
and record the last row it covered in the state file (atomically).

Resumable: every document gets a stable id (a key column, or a hash of the row's content), so a
batch sent again after a crash overwrites itself instead of duplicating; `--resume` skips every
row the state file says was acknowledged, after checking it is the same file (size, modification
time and a hash of its first MiB) and cuts the reject file back to what that state had written.

Memory is bounded: rows stream, one batch (a few MiB) is held at a time, nothing else grows with
the file. The reject file names rows by number and reason only: never a value from the file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from ..client import ClientError, StrongroomClient

RETRY_STATUSES = (429, 502, 503, 504)
MAX_ATTEMPTS = 12
SAMPLE_ROWS = 10_000
STATE_VERSION = 1


class LoadError(Exception):
    """The load cannot go on; the message says why and what to do."""


@dataclass
class LoadOptions:
    index: str
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    plan: bool = False
    yes: bool = False
    mapping_file: Path | None = None
    allow_plain: tuple[str, ...] = ()
    id_column: str | None = None
    batch_bytes: int = 4 << 20
    batch_rows: int = 5000
    resume: bool = False
    restart: bool = False
    reject_path: Path | None = None
    state_path: Path | None = None


@dataclass
class Summary:
    rows: int = 0  # rows read this run (skipped ones excluded)
    loaded: int = 0
    rejected: int = 0
    skipped: int = 0  # acknowledged by an earlier, interrupted run
    created_index: bool = False
    planned: Any = None  # the proposal, with --plan
    reject_path: Path | None = None


@dataclass
class _Batch:
    lines: list[bytes] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # row number of each document, in order
    rejects: list[tuple[int, str]] = field(default_factory=list)  # bad rows met while filling it
    size: int = 0
    last_row: int = 0


def file_fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    with open(path, "rb") as stream:
        head = hashlib.sha256(stream.read(1 << 20)).hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


def content_id(values: dict[str, Any]) -> str:
    """A stable id from a row's content: the same row always gets the same id (so a resent batch
    overwrites itself), 128 bits of SHA-256, URL-safe."""
    digest = hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


class Loader:
    def __init__(self, client: StrongroomClient, path: Path, options: LoadOptions, *,
                 out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 confirm: Callable[[str], bool] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.path = path
        self.options = options
        self.out, self.err = out, err
        self.confirm = confirm
        self.sleep = sleep
        self.state_path = options.state_path or path.with_name(path.name + ".strongroom-load.json")
        self.reject_path = options.reject_path or path.with_name(path.name + ".rejects.ndjson")
        self._fields: dict[str, str] = {}  # column → field
        self._progress_at = 0.0

    # -- the whole load -----------------------------------------------------------------------------
    def run(self) -> Summary:
        from . import readers

        options = self.options
        summary = Summary(reject_path=self.reject_path)
        state = self._initial_state()
        acknowledged = state["acknowledged"]
        if not options.resume or not state.get("index_ready"):
            proposal = self._prepare_index(summary)
            if options.plan:
                summary.planned = proposal
                return summary
            state["index_ready"] = True
            state["fields"] = self._fields
            self._save_state(state)
        else:
            self._fields = state["fields"]
        reject_stream = self._open_rejects(state)
        started = time.monotonic()
        hint = readers.count_records_hint(self.path)
        batch = _Batch()
        try:
            with readers.open_rows(self.path, format=options.format, encoding=options.encoding,
                                   delimiter=options.delimiter, sheet=options.sheet) as rows:
                for row in rows:
                    if row.number <= acknowledged:
                        summary.skipped += 1
                        continue
                    summary.rows += 1
                    batch.last_row = row.number
                    if row.error is not None or row.values is None:
                        batch.rejects.append((row.number, row.error or "unreadable row"))
                    else:
                        self._add(batch, row.number, row.values)
                    if batch.size >= options.batch_bytes or len(batch.rows) >= options.batch_rows:
                        self._flush(batch, state, summary, reject_stream)
                        batch = _Batch()
                        self._progress(summary, hint, started)
                if batch.rows or batch.rejects:
                    self._flush(batch, state, summary, reject_stream)
        finally:
            reject_stream.close()
        self._progress(summary, hint, started, final=True)
        try:
            self.client.request("POST", f"/{self.options.index}/_refresh")
        except (ClientError, OSError):
            pass  # The index refreshes on its own within its refresh interval.
        self.state_path.unlink(missing_ok=True)
        if summary.rejected == 0 and self.reject_path.exists() and self.reject_path.stat().st_size == 0:
            self.reject_path.unlink()
        return summary

    # -- state --------------------------------------------------------------------------------------
    def _initial_state(self) -> dict[str, Any]:
        options = self.options
        fingerprint = file_fingerprint(self.path)
        if self.state_path.exists() and not options.resume and not options.plan:
            if not options.restart:
                raise LoadError(f"an earlier load of this file was interrupted ({self.state_path}): pass --resume to "
                                "continue it, or --restart to load from the first row again")
            self.state_path.unlink()
        if options.resume:
            try:
                state = orjson.loads(self.state_path.read_bytes())
            except FileNotFoundError:
                raise LoadError(f"nothing to resume: no state file at {self.state_path}") from None
            except orjson.JSONDecodeError:
                raise LoadError(f"the state file {self.state_path} is damaged; use --restart") from None
            if state.get("version") != STATE_VERSION or state.get("file") != fingerprint:
                raise LoadError(f"{self.path} is not the file the interrupted load read (size, time or content "
                                "changed); use --restart")
            if state.get("index") != options.index:
                raise LoadError(f"the interrupted load went to index [{state.get('index')}], not [{options.index}]")
            return state
        return {"version": STATE_VERSION, "file": fingerprint, "index": options.index, "acknowledged": 0,
                "loaded": 0, "rejected": 0, "reject_bytes": 0}

    def _save_state(self, state: dict[str, Any]) -> None:
        from ..engine.fsutil import atomic_write

        atomic_write(self.state_path, orjson.dumps(state), mode=0o600)

    def _open_rejects(self, state: dict[str, Any]) -> Any:
        stream = open(self.reject_path, "ab")
        try:
            os.fchmod(stream.fileno(), 0o600)
            stream.truncate(state.get("reject_bytes", 0))  # what a crash wrote after the last state
            stream.seek(0, os.SEEK_END)
        except BaseException:
            stream.close()
            raise
        return stream

    # -- the index and its mapping ---------------------------------------------------------------------
    def _sample(self) -> list[dict[str, Any]]:
        from . import readers

        sample = []
        with readers.open_rows(self.path, format=self.options.format, encoding=self.options.encoding,
                               delimiter=self.options.delimiter, sheet=self.options.sheet) as rows:
            for row in rows:
                if row.values is not None:
                    sample.append(row.values)
                if len(sample) >= SAMPLE_ROWS:
                    break
        if not sample:
            raise LoadError(f"{self.path} has no readable row")
        return sample

    def _prepare_index(self, summary: Summary) -> Any:
        from . import propose

        options = self.options
        sample = self._sample()
        profiles = propose.profile(sample)
        exists = self._index_exists()
        proposal = None
        if exists:
            mapping = self.client.request("GET", f"/{options.index}/_mapping")
            body = {"mappings": next(iter(mapping.values()))["mappings"]} if mapping else {"mappings": {}}
            self._refuse(propose.check_mapping(body, profiles, allow_plain=options.allow_plain), "the index's mapping")
            self._fields = propose.resolve_columns(body, [p.name for p in profiles])
        elif options.mapping_file is not None:
            try:
                body = orjson.loads(options.mapping_file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise LoadError(f"cannot read the mapping file {options.mapping_file}: {exc}") from None
            if not isinstance(body, dict):
                raise LoadError(f"{options.mapping_file} must hold an index body: {{\"mappings\": …}}")
            body = body if "mappings" in body or "settings" in body else {"mappings": body}
            try:
                problems = propose.check_mapping(body, profiles, allow_plain=options.allow_plain)
            except ValueError as exc:
                raise LoadError(f"{options.mapping_file}: {exc}") from None
            self._refuse(problems, str(options.mapping_file))
            self._fields = propose.resolve_columns(body, [p.name for p in profiles])
        else:
            try:
                proposal = propose.propose(profiles, allow_plain=options.allow_plain)
            except ValueError as exc:
                raise LoadError(str(exc)) from None
            body = proposal.body
            self._fields = {column: field for field, column in proposal.columns.items()}
        if options.id_column is not None:
            self._check_id_column(profiles)
        if options.plan:
            return proposal if proposal is not None else body
        if not exists:
            if proposal is not None and not options.yes:
                self.out.write(proposal.table() + "\n")
                if self.confirm is None or not self.confirm(f"Create index [{options.index}] with this mapping?"):
                    raise LoadError("not loaded: accept the proposed mapping with --yes, review it with --plan, or "
                                    "bring your own with --mapping FILE")
            self.client.request("PUT", f"/{options.index}", body)
            summary.created_index = True
        return proposal

    def _index_exists(self) -> bool:
        try:
            self.client.request("GET", f"/{self.options.index}", ok=(200,))
            return True
        except ClientError as exc:
            if exc.status == 404:
                return False
            raise

    @staticmethod
    def _refuse(problems: list[str], what: str) -> None:
        if problems:
            listed = "\n  - ".join(problems)
            raise LoadError(f"not loaded: {what} would store personal data unprotected:\n  - {listed}\nProtect these "
                            "columns, or name each one you accept to store in plain with --allow-plain COLUMN")

    def _check_id_column(self, profiles: list[Any]) -> None:
        column = self.options.id_column
        found = next((p for p in profiles if p.name == column), None)
        if found is None:
            raise LoadError(f"--id-column [{column}] is not a column of {self.path}")
        kind = found.kind
        if kind and column not in self.options.allow_plain:
            raise LoadError(f"--id-column [{column}] holds personal data ({kind}); document ids are not protected "
                            "(they appear in URLs and the audit log). Choose another column, or leave ids to the "
                            "content hash")

    # -- batches ------------------------------------------------------------------------------------------
    def _add(self, batch: _Batch, number: int, values: dict[str, Any]) -> None:
        doc: dict[str, Any] = {}
        for column, value in values.items():
            if value is None or value == "":
                continue
            doc[self._fields.get(column) or column] = value
        if self.options.id_column is not None:
            key = values.get(self.options.id_column)
            if key is None or key == "":
                batch.rejects.append((number, f"no value in the id column [{self.options.id_column}]"))
                return
            doc_id = str(key)
        else:
            doc_id = content_id(values)
        action = orjson.dumps({"index": {"_index": self.options.index, "_id": doc_id}})
        try:
            source = orjson.dumps(doc, default=str)
        except TypeError as exc:
            batch.rejects.append((number, f"a value cannot be written as JSON ({exc})"))
            return
        batch.lines += [action, source]
        batch.rows.append(number)
        batch.size += len(action) + len(source) + 2

    def _flush(self, batch: _Batch, state: dict[str, Any], summary: Summary, rejects: Any) -> None:
        failed: list[tuple[int, str]] = list(batch.rejects)
        pending = list(range(len(batch.rows)))  # positions in the batch still to be acknowledged
        attempt = 0
        loaded = 0
        while pending:
            body = b"\n".join(line for i in pending for line in batch.lines[2 * i:2 * i + 2]) + b"\n"
            try:
                answer = self.client.request("POST", "/_bulk", ndjson=body)
            except (ClientError, OSError) as exc:
                status = getattr(exc, "status", None)
                if status is not None and status not in RETRY_STATUSES:
                    raise LoadError(f"the server refused a batch: {exc}") from None
                attempt += 1
                if attempt >= MAX_ATTEMPTS:
                    raise LoadError(f"the server kept refusing a batch ({exc}); run again with --resume") from None
                self._backoff(attempt, getattr(exc, "retry_after", None))
                continue
            retry = []
            for position, item in zip(pending, answer["items"]):
                result = next(iter(item.values()))
                status = result.get("status", 500)
                if status < 300:
                    loaded += 1
                elif status in RETRY_STATUSES:
                    retry.append(position)
                else:
                    error = result.get("error") or {}
                    reason = error.get("reason") if isinstance(error, dict) else str(error)
                    kind = error.get("type", "error") if isinstance(error, dict) else "error"
                    failed.append((batch.rows[position], f"{kind}: {reason}"))
            pending = retry
            if pending:
                attempt += 1
                if attempt >= MAX_ATTEMPTS:
                    raise LoadError("the server kept rejecting documents with 429; run again with --resume")
                self._backoff(attempt, None)
        for number, reason in sorted(failed):
            rejects.write(orjson.dumps({"row": number, "reason": reason}) + b"\n")
        rejects.flush()
        os.fsync(rejects.fileno())
        summary.loaded += loaded
        summary.rejected += len(failed)
        state["acknowledged"] = max(state["acknowledged"], batch.last_row)
        state["loaded"] = state.get("loaded", 0) + loaded
        state["rejected"] = state.get("rejected", 0) + len(failed)
        state["reject_bytes"] = rejects.tell()
        self._save_state(state)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else min(30.0, 0.25 * 2 ** attempt)
        self.err.write(f"\nserver busy, retrying in {delay:.1f}s (attempt {attempt})\n")
        self.sleep(delay)

    # -- progress -----------------------------------------------------------------------------------------
    def _progress(self, summary: Summary, hint: int | None, started: float, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._progress_at < 0.2:
            return
        self._progress_at = now
        elapsed = max(now - started, 1e-6)
        rate = summary.rows / elapsed
        line = f"\r{summary.rows + summary.skipped:,} rows  {rate:,.0f} rows/s"
        if hint:
            done = summary.rows + summary.skipped
            line += f"  {min(100.0, 100.0 * done / hint):5.1f}%"
            if rate > 0 and done < hint:
                line += f"  ETA {_duration((hint - done) / rate)}"
        self.err.write(line + ("\n" if final else ""))
        self.err.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def read_profile(name: str, path: Path | None = None) -> dict[str, Any]:
    """A named connection profile from `~/.config/strongroom/profiles.toml` (or $STRONGROOM_PROFILES):
    [profiles.NAME] url, ca_certs, user, api_key_env (the name of the environment variable holding
    the API key, so no secret lives in the file)."""
    import tomllib

    path = path or Path(os.environ.get("STRONGROOM_PROFILES", Path.home() / ".config" / "strongroom" /
                                       "profiles.toml"))
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LoadError(f"no profile file at {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LoadError(f"cannot read {path}: {exc}") from None
    profile = (data.get("profiles") or {}).get(name)
    if not isinstance(profile, dict):
        raise LoadError(f"no profile [{name}] in {path}")
    unknown = set(profile) - {"url", "ca_certs", "user", "api_key_env"}
    if unknown:
        raise LoadError(f"profile [{name}] in {path}: unknown key [{sorted(unknown)[0]}]")
    return profile

