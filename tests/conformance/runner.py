"""A runner for the YAML REST tests of OpenSearch (and Elasticsearch) against a live Strongroom.

The suite lives in `tests/conformance/opensearch-rest-api-spec/` (a copy of the project's shared
conformance material, Apache-2.0, see its SOURCE.md and NOTICE.txt; override with
`$STRONGROOM_CONFORMANCE_SUITE`): `test/<api>/<file>.yml` holds the tests, `api/<name>.json` the
API specs that turn an API name and its parameters into an HTTP request. See `SOURCE.md` there.

The semantics follow the reference runner in OpenSearch's `test/framework`
(`ClientYamlTestExecutionContext`, `ClientYamlTestClient`, `DoSection`, `MatchAssertion`, `Stash`,
`ObjectPath`, ...); it was read for its behaviour, this is an independent implementation. Where it
differs on purpose, a comment says so. Deliberate differences: `skip.version` never skips (we
answer as Elasticsearch 8.15 but implement OpenSearch semantics where the two agree; the few cases
written only for old versions are listed in `SKIP_CASES`), request paths and methods are chosen
deterministically instead of at random, bodies are never sent as a `source` parameter, and
`warnings` are not checked. As the reference does, every request carries `error_trace=true` unless
the test sets it, `ignore: 404` is consumed by the client, `catch: param` sends nothing, and a 404
answer to HEAD is not an error.

Which cases run is decided by the tables below, not by trial:

* `UNIMPLEMENTED_APIS`   API specs Strongroom has no route for: a case calling one is skipped.
* `UNSUPPORTED_FEATURES` detectors for features of an implemented API that Strongroom does not
                         have yet (scripts, pipelines, aliases, ...): a case using one is skipped.
* `SKIP_CASES`           single cases that cannot apply, with the reason.
* `XFAIL`                cases that run and fail because Strongroom answers differently from
                         Elasticsearch/OpenSearch in an implemented API. These are server bugs (or
                         deliberate differences awaiting a decision): remove an entry when the fix
                         lands; a strict xfail that starts passing fails the run as a reminder.

`python tests/conformance/runner.py --write-expected-failures` rewrites `expected_failures.md`
from these tables (no server needed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

SUITE_ROOT = Path(os.environ.get("STRONGROOM_CONFORMANCE_SUITE",
                                 Path(__file__).parent / "opensearch-rest-api-spec"))
EXPECTED_FAILURES_MD = Path(__file__).with_name("expected_failures.md")


# =====================================================================================
# Tables: what Strongroom does not have, what is known to differ
# =====================================================================================

# API spec name → the missing capability (also the skip group). Derived from the routes in
# src/strongroom/api/app.py: everything the suite calls that has no route there.
UNIMPLEMENTED_APIS: dict[str, str] = {
    "reindex_rethrottle": "the tasks API",
    "tasks.get": "the tasks API",
    "indices.close": "closing indices",
    "indices.put_alias": "aliases",
    "indices.get_alias": "aliases",
    "indices.forcemerge": "force merge",
}

# APIs with a route in app.py (the summary checks both tables against the live router: `router_drift`).
IMPLEMENTED_APIS = frozenset({
    "info", "ping", "cluster.health", "cat.indices", "cat.count", "indices.create", "indices.delete",
    "indices.exists", "indices.get", "indices.get_mapping", "indices.put_mapping", "indices.get_settings",
    "indices.refresh", "count", "indices.stats", "index", "create", "get", "exists", "get_source", "delete",
    "update", "mget", "bulk", "search", "msearch", "scroll", "clear_scroll", "delete_by_query", "update_by_query",
    "indices.put_settings",
})

# Features of the reference runner (skip.features) that this runner implements. A case whose skip
# section names anything else is skipped, as the reference runner does.
RUNNER_FEATURES = frozenset({
    "allowed_warnings", "warnings", "headers", "node_selector", "yaml", "contains", "transform_and_set",
    "arbitrary_key", "stash_in_path", "stash_in_key", "embedded_stash_key", "stash_path_replace",
    "default_shards", "catch_unauthorized", "close_to",
})


@dataclass(frozen=True)
class ApiCall:
    """One `do` step, as the feature detectors see it."""
    api: str
    params: dict[str, Any]
    body: Any


def _walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """(key, value) for every node of a JSON-like value, keys of dicts included."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        key, node = stack.pop()
        yield key, node
        if isinstance(node, dict):
            stack.extend((str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((None, v) for v in node)


def _body_docs(call: ApiCall) -> list[Any]:
    """The body as a list of JSON values (bulk bodies given as strings are parsed line by line)."""
    body = call.body
    items = body if isinstance(body, list) else [body]
    docs: list[Any] = []
    for item in items:
        if isinstance(item, str):
            for line in item.splitlines():
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    pass
        elif item is not None:
            docs.append(item)
    return docs


def _settings(call: ApiCall) -> dict[str, Any]:
    """Flat `index.*` settings of an indices.create body."""
    if call.api != "indices.create" or not isinstance(call.body, dict):
        return {}
    flat: dict[str, Any] = {}

    def flatten(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                flatten(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            flat[prefix if prefix.startswith("index.") else f"index.{prefix}"] = node

    flatten(call.body.get("settings") or {}, "")
    return flat


def _mapping_nodes(call: ApiCall) -> Iterator[tuple[str | None, Any]]:
    if call.api == "indices.create" and isinstance(call.body, dict):
        yield from _walk(call.body.get("mappings"))
    elif call.api == "indices.put_mapping":
        yield from _walk(call.body)


def _uses_script(call: ApiCall) -> bool:
    if call.api in ("update", "bulk", "update_by_query"):
        return any(isinstance(d, dict) and ("script" in d or d.get("scripted_upsert"))
                   for d in _body_docs(call))
    if call.api in ("search", "msearch"):
        return any(k in ("script", "script_fields", "script_score")
                   for d in _body_docs(call) for k, _ in _walk(d))
    return False


def _uses_pipeline(call: ApiCall) -> bool:
    if "pipeline" in call.params or call.api.startswith("ingest."):
        return True
    if call.api == "bulk":
        return any(isinstance(d, dict) and any(isinstance(m, dict) and "pipeline" in m for m in d.values())
                   for d in _body_docs(call))
    return False


def _uses_aliases(call: ApiCall) -> bool:
    if call.api == "indices.create" and isinstance(call.body, dict) and call.body.get("aliases"):
        return True
    if "require_alias" in call.params:
        return True
    if call.api == "bulk":
        return any(isinstance(d, dict) and any(isinstance(m, dict) and "require_alias" in m
                                               for m in d.values())
                   for d in _body_docs(call))
    return False


_STANDARD_ANALYZERS = {"standard", "default", "cjk", "simple", "whitespace", "keyword", "english"}
# Index settings Strongroom does not have at all (documented in docs/configuration.md: unknown
# settings are refused). `index.number_of_routing_shards` is deliberately NOT here: routing is
# implemented, so refusing that setting is a difference worth fixing (see XFAIL).
_MISSING_SETTINGS = {
    "index.hidden": "hidden indices",
    "index.mapping.nested_objects.limit": "nested fields",
    "index.search.concurrent_segment_search.mode": "OpenSearch's concurrent segment search",
    "index.search.concurrent_segment_search.enabled": "OpenSearch's concurrent segment search",
    "index.max_script_fields": "scripts",
}
_PIPELINE_AGGS = {"avg_bucket", "sum_bucket", "max_bucket", "min_bucket", "stats_bucket", "extended_stats_bucket",
                  "percentiles_bucket", "bucket_script", "bucket_selector", "bucket_sort", "cumulative_sum",
                  "derivative", "moving_avg", "moving_fn", "serial_diff", "cumulative_cardinality"}
# Field types Strongroom refuses (engine/mapping.py UNSUPPORTED), by capability.
_UNSUPPORTED_TYPES = {
    "token_count": "token_count fields", "unsigned_long": "unsigned_long fields", "date_nanos": "date_nanos fields",
    "integer_range": "range fields", "long_range": "range fields", "float_range": "range fields",
    "double_range": "range fields", "date_range": "range fields", "ip_range": "range fields",
    "flattened": "flattened fields", "wildcard": "wildcard fields", "geo_shape": "geo_shape fields",
    "completion": "completion fields", "search_as_you_type": "search_as_you_type fields",
}


def _missing_setting(call: ApiCall) -> str | None:
    for name in _settings(call):
        if name in _MISSING_SETTINGS:
            return _MISSING_SETTINGS[name]
    return None


def _stored_field_names(call: ApiCall) -> list[str]:
    """Fields requested through `stored_fields` (URL parameter, or per doc in an mget body)."""
    names: list[str] = []
    for value in [call.params.get("stored_fields")] + [
            doc.get("stored_fields") for body in _body_docs(call) if isinstance(body, dict)
            for doc in (body.get("docs") or []) if isinstance(doc, dict)]:
        if isinstance(value, str):
            names.extend(v.strip() for v in value.split(","))
        elif isinstance(value, list):
            names.extend(str(v) for v in value)
    return names


def _disables_source(call: ApiCall) -> bool:
    return any(k == "_source" and isinstance(v, dict) and v.get("enabled") is False
               for k, v in _mapping_nodes(call))


# (capability, detector). The capability is the skip reason ("needs <capability>") and its group.
UNSUPPORTED_FEATURES: list[tuple[str, Callable[[ApiCall], bool]]] = [
    ("scripts", _uses_script),
    ("ingest pipelines", _uses_pipeline),
    ("aliases", _uses_aliases),
    ("nested fields", lambda c: _missing_setting(c) == "nested fields"
     or any(k == "type" and v == "nested" for k, v in _mapping_nodes(c))),
    ("analyzers other than standard (search issue)",
     lambda c: any(k in ("analyzer", "search_analyzer") and v not in _STANDARD_ANALYZERS
                   for k, v in _mapping_nodes(c))),
    ("disabling _source (refused by design)", _disables_source),
    ("field types Strongroom does not have (token_count, unsigned_long, date_nanos, ranges, …)",
     lambda c: any(k == "type" and isinstance(v, str) and v in _UNSUPPORTED_TYPES for k, v in _mapping_nodes(c))),
    ("rescoring, field collapsing or suggesters", lambda c: c.api in ("search", "msearch") and any(
        k in ("rescore", "collapse", "suggest") for d in _body_docs(c) if isinstance(d, dict) for k in d)),
    ("OpenSearch's concurrent segment search", lambda c: _missing_setting(c) == "OpenSearch's concurrent segment "
                                                                           "search"),
    ("scripts", lambda c: _missing_setting(c) == "scripts"),
    ("the search profiler", lambda c: c.api in ("search", "msearch") and any(
        isinstance(d, dict) and d.get("profile") for d in _body_docs(c))),
    ("request-cache and fielddata statistics", lambda c: c.api == "indices.stats" and bool(c.params.get("metric"))),
    ("terms lookup", lambda c: c.api in ("search", "msearch", "count") and any(
        k == "terms" and isinstance(v, dict) and any(isinstance(x, dict) and "index" in x for x in v.values())
        for d in _body_docs(c) for k, v in _walk(d))),
    ("partitioned terms aggregations", lambda c: c.api in ("search", "msearch") and any(
        k == "include" and isinstance(v, dict) and "partition" in v for d in _body_docs(c) for k, v in _walk(d))),
    ("pipeline aggregations", lambda c: c.api in ("search", "msearch") and any(
        k in _PIPELINE_AGGS for d in _body_docs(c) for k, _ in _walk(d))),
    ("hidden indices", lambda c: _missing_setting(c) == "hidden indices"
     or "hidden" in str(c.params.get("expand_wildcards", ""))),
]

# Single cases that cannot apply to Strongroom, whatever gets implemented: case id → (group, reason).
LEGACY = "legacy behaviour (old versions only)"
OPENSEARCH_ONLY = "OpenSearch-only behaviour (Elasticsearch 8 differs)"
BY_DESIGN = "stack traces (refused by design)"
SKIP_CASES: dict[str, tuple[str, str]] = {
    'search/400_max_score::Test max score with sorting on score firstly with concurrent segment search enabled': (
        OPENSEARCH_ONLY, 'sets OpenSearch\'s index.search.concurrent_segment_search.mode'),
    'msearch/30_error_traces::Returns a detailed error stack trace when requested': (
        BY_DESIGN, 'stack traces in error responses are refused by design (they leak internals)'),
    'search.aggregation/10_histogram::Deprecated _time order': (
        LEGACY, 'the `_time` order key was removed in Elasticsearch 8 (use `_key`)'),
    'search/400_max_score::Test max score with sorting on score firstly': (
        OPENSEARCH_ONLY, "expects OpenSearch 3.2's constant score for a keyword term query (OpenSearch issue 18714); Elasticsearch scores it with BM25"),
    # skip.version "X - " means: run only on versions before X. We never skip for versions, but these
    # contradict the current-behaviour case next to them, so no server could pass both.
    "indices.put_mapping/10_basic::Put mappings with explicit _doc type bwc": (
        LEGACY,
        "pre-2.0 error message (skip.version '2.0.0 - '); contradicts 'Put mappings with explicit _doc "
        "type'"),
    "cluster.health/10_basic::cluster health with closed index (pre 7.2.0)": (
        LEGACY,
        "pre-7.2 closed-index health (skip.version '7.2.0 - '); contradicts 'cluster health with closed "
        "index'; also needs closing indices"),
    "cat.indices/10_basic::Test cat indices output for closed index (pre 7.2.0)": (
        LEGACY,
        "pre-7.2 closed-index output (skip.version '7.2.0 - '); contradicts 'Test cat indices output for "
        "closed index'; also needs closing indices"),
    "delete_by_query/10_basic::Response for version conflict (version powered)": (
        LEGACY,
        "pre-6.7 versioning (skip.version '6.7.0 - '); also needs delete_by_query"),
    "delete_by_query/10_basic::Limit by size pre 7.3": (
        LEGACY,
        "pre-7.3 `size` (skip.version '7.3.0 - '); also needs delete_by_query"),
    "update_by_query/10_basic::Response for version conflict (version powered)": (
        LEGACY,
        "pre-6.7 versioning (skip.version '6.7.0 - '); also needs update_by_query"),
    "update_by_query/10_basic::Limit by size pre 7.3": (
        LEGACY,
        "pre-7.3 `size` (skip.version '7.3.0 - '); also needs update_by_query"),
    "search.aggregation/10_histogram::date_histogram with offset": (
        LEGACY,
        "disabled upstream for all versions (skip.version 'all', AwaitsFix elastic/elasticsearch#51525); "
        "also needs the search API"),
    # OpenSearch answers differently from Elasticsearch 8 here; Strongroom follows Elasticsearch.
    ("cluster.health/10_basic::Get cluster health has same value for discovered_master and "
     "discovered_cluster_manager"): (
        OPENSEARCH_ONLY,
        "`discovered_master`/`discovered_cluster_manager` are OpenSearch 2.x fields; Elasticsearch 8 has "
        "neither"),
    "cat.indices/10_basic::Test cat indices output": (
        OPENSEARCH_ONLY,
        "the regex expects OpenSearch's 10 default columns; Elasticsearch 8 (and Strongroom) add "
        "`dataset.size`. NB its second half also needs column aliases (i, cd, cds) and the creation.date "
        "/ creation.date.string columns, which Strongroom lacks"),
    "indices.create/10_basic::Create index without soft deletes": (
        OPENSEARCH_ONLY,
        "OpenSearch accepts `soft_deletes.enabled: false` with a deprecation warning; Elasticsearch 8 "
        "refuses it (400: soft-deletes can no longer be disabled)"),
    "bulk/100_unmap_fields_beyond_limit::Test unmap the object type fields beyond the total fields limit": (
        OPENSEARCH_ONLY,
        "`index.mapping.total_fields.unmap_fields_beyond_limit` is an OpenSearch 3.0 setting; also needs "
        "updating index settings (indices.put_settings)"),
    # Error stack traces: Strongroom's errors never carry a stack (see src/strongroom/errors.py).
    "bulk/100_error_traces::Returns a detailed error stack trace when requested": (
        BY_DESIGN,
        "stack traces in bulk item errors (OpenSearch 3.4 `error_trace`); Strongroom never returns stacks"
        " (errors.py)"),
    "mget/90_error_traces::Returns a detailed error stack trace when requested": (
        BY_DESIGN,
        "stack traces in mget item errors (OpenSearch 3.4 `error_trace`); Strongroom never returns stacks"
        " (errors.py)"),
}

_ROUTING_SHARDS = ("indices.create refuses `index.number_of_routing_shards` (400 unknown setting); "
                   "Elasticsearch accepts it")
_STORED_ROUTING = ("`stored_fields=_routing` is refused with 400 parsing_exception; Elasticsearch accepts "
                   "metadata stored fields")
# Cases that run and fail because Strongroom answers differently from Elasticsearch/OpenSearch in an
# implemented API: case id → reason (expected vs actual). The server bugs to fix. Remove the entry
# with the fix: a strict xfail that passes fails the run as a reminder.
XFAIL: dict[str, str] = {
}


# =====================================================================================
# YAML loading (YAML 1.1 as the reference runner's parser reads it, without its surprises)
# =====================================================================================

class _SuiteLoader(yaml.SafeLoader):
    """SafeLoader with Jackson-like scalar typing: only true/false are booleans (not yes/no/on/off),
    no timestamps, no sexagesimal or octal integers."""


_SuiteLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^[-+]?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$",
     list("-+0123456789.")),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]:
    _SuiteLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def load_yaml_documents(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_SuiteLoader))  # noqa: S506 - a SafeLoader subclass


# =====================================================================================
# The suite: files, sections, cases
# =====================================================================================

@dataclass
class Section:
    name: str
    steps: list[dict[str, Any]]


@dataclass
class SuiteFile:
    api: str
    file: str  # without .yml
    path: Path
    setup: Section | None = None
    teardown: Section | None = None
    sections: list[Section] = field(default_factory=list)


@dataclass
class Case:
    suite: SuiteFile
    section: Section

    @property
    def id(self) -> str:
        return f"{self.suite.api}/{self.suite.file}::{self.section.name}"

    def all_steps(self) -> Iterator[dict[str, Any]]:
        for part in (self.suite.setup, self.section, self.suite.teardown):
            if part is not None:
                yield from part.steps


def load_suite_file(path: Path) -> SuiteFile:
    suite = SuiteFile(api=path.parent.name, file=path.stem, path=path)
    for doc in load_yaml_documents(path.read_text(encoding="utf-8")):
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: a test document must be a mapping, got {type(doc).__name__}")
        for name, steps in doc.items():
            section = Section(str(name), list(steps or []))
            if name == "setup":
                suite.setup = section
            elif name == "teardown":
                suite.teardown = section
            else:
                suite.sections.append(section)
    return suite


def collect_cases(root: Path = SUITE_ROOT) -> list[Case]:
    cases = []
    for path in sorted((root / "test").glob("*/*.yml")):
        suite = load_suite_file(path)
        cases.extend(Case(suite, section) for section in suite.sections)
    return cases


# =====================================================================================
# Classification: skip (and why), xfail (and why)
# =====================================================================================

@dataclass(frozen=True)
class Verdict:
    kind: str  # "run" | "skip" | "xfail"
    group: str = ""
    reason: str = ""


def _skip_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        if isinstance(step, dict) and "skip" in step:
            yield step["skip"] or {}


def _features_of(skip: dict[str, Any]) -> list[str]:
    features = skip.get("features") or []
    if isinstance(features, str):
        features = features.split(",")
    return [f.strip() for f in features]


def do_calls(case: Case) -> Iterator[ApiCall]:
    for step in case.all_steps():
        if isinstance(step, dict) and "do" in step:
            api, params, _meta = split_do(step["do"])
            body = params.pop("body", None)
            yield ApiCall(api, params, body)


def classify(case: Case) -> Verdict:
    if case.id in SKIP_CASES:
        group, reason = SKIP_CASES[case.id]
        return Verdict("skip", group, reason)
    for part in (case.suite.setup, case.section):
        if part is None:
            continue
        for skip in _skip_steps(part.steps):
            missing = [f for f in _features_of(skip) if f not in RUNNER_FEATURES]
            if missing:
                return Verdict("skip", "runner lacks a feature", f"runner lacks test features {missing}")
            # A version range never skips (see the module docstring).
    apis: list[str] = []
    features: list[str] = []
    for call in do_calls(case):
        if call.api in UNIMPLEMENTED_APIS and call.api not in apis:
            apis.append(call.api)
        for capability, detect in UNSUPPORTED_FEATURES:
            if capability not in features and detect(call):
                features.append(capability)
    if apis:
        apis.sort(key=list(UNIMPLEMENTED_APIS).index)  # table order: the search API first
        needs = []
        for api in apis:
            if UNIMPLEMENTED_APIS[api] not in needs:
                needs.append(UNIMPLEMENTED_APIS[api])
        features = [f for f in features if f not in needs]
        extra = f"; also {', '.join(features)}" if features else ""
        return Verdict("skip", f"needs {needs[0]}",
                       f"needs {', '.join(needs)} (not implemented: {', '.join(apis)}){extra}")
    if features:
        return Verdict("skip", f"needs {features[0]}", f"needs {', '.join(features)}")
    if case.id in XFAIL:
        return Verdict("xfail", "known difference (xfail)", XFAIL[case.id])
    return Verdict("run")


# =====================================================================================
# API specs → HTTP requests
# =====================================================================================

class NotImplementedApi(Exception):
    """A `do` calls an API Strongroom has no route for (or that has no spec): the case is skipped."""

    def __init__(self, api: str, detail: str) -> None:
        super().__init__(f"API [{api}] is not implemented by Strongroom: {detail}")
        self.api = api


class RunnerError(Exception):
    """The test cannot be executed as written (unknown parameter, missing path part, unknown stash key).

    Not an AssertionError on purpose: a strict xfail (raises=AssertionError) does not absorb it."""


# Specs missing from the copied suite (SOURCE.md: `api/info.json`, `api/ping.json` and
# `api/indices.refresh.json` were not in the index), written from the public REST API.
FALLBACK_SPECS: dict[str, dict[str, Any]] = {
    "info": {"url": {"paths": [{"path": "/", "methods": ["GET"]}]}, "params": {}},
    "ping": {"url": {"paths": [{"path": "/", "methods": ["HEAD"]}]}, "params": {}},
    "indices.refresh": {
        "url": {"paths": [{"path": "/_refresh", "methods": ["POST", "GET"]},
                          {"path": "/{index}/_refresh", "methods": ["POST", "GET"]}]},
        "params": {"ignore_unavailable": {}, "allow_no_indices": {}, "expand_wildcards": {}},
    },
}
# Parameters every API accepts (rest-api-spec `_common.json`), and the ones the client consumes.
GLOBAL_PARAMS = frozenset({"pretty", "human", "error_trace", "source", "filter_path"})
CLIENT_PARAMS = frozenset({"ignore"})
_PART = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class ApiSpec:
    name: str
    paths: list[dict[str, Any]]
    params: frozenset[str]
    body: dict[str, Any] | None

    @property
    def bulk_body(self) -> bool:
        return bool(self.body and self.body.get("serialize") == "bulk")


def load_specs(root: Path = SUITE_ROOT) -> dict[str, ApiSpec]:
    raw: dict[str, dict[str, Any]] = dict(FALLBACK_SPECS)
    for path in sorted((root / "api").glob("*.json")):
        if path.name.startswith("_"):
            continue
        raw.update(json.loads(path.read_text(encoding="utf-8")))
    return {name: ApiSpec(name, spec["url"]["paths"], frozenset(spec.get("params", {})),
                          spec.get("body") or None)
            for name, spec in raw.items()}


@dataclass
class HttpRequest:
    method: str
    path: str  # with the query string
    body: bytes | None
    headers: dict[str, str]

    def describe(self, limit: int = 1500) -> str:
        text = f"{self.method} {self.path}"
        if self.body is not None:
            shown = self.body.decode("utf-8", "replace")
            text += "\n" + (shown if len(shown) <= limit else shown[:limit] + "…")
        return text


def param_text(value: Any) -> str | None:
    """A parameter as the reference runner's parser sees it; lists join with ",", [] means absent."""
    if isinstance(value, list):
        texts = [t for t in (param_text(v) for v in value) if t is not None]
        return ",".join(texts) if texts else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict,)):
        raise RunnerError(f"a parameter cannot be an object: {value!r}")
    return str(value)


def choose_path(spec: ApiSpec, given: set[str]) -> dict[str, Any]:
    """The path whose parts are all given, with the most parts; ties: non-deprecated, then first listed."""
    best: tuple[int, int, int] | None = None
    chosen = None
    for position, path in enumerate(spec.paths):
        parts = set(_PART.findall(path["path"]))
        if not parts <= given:
            continue
        rank = (len(parts), 0 if path.get("deprecated") else 1, -position)
        if best is None or rank > best:
            best, chosen = rank, path
    if chosen is None:
        raise RunnerError(f"no path of [{spec.name}] can be built from parameters {sorted(given)}")
    return chosen


def choose_method(methods: list[str], has_body: bool) -> str:
    if has_body and "GET" in methods:
        for method in methods:
            if method != "GET":
                return method
    return methods[0]


# =====================================================================================
# Stash and object paths
# =====================================================================================

_EXTENDED_KEY = re.compile(r"\$\{([^}]+)\}")


def java_str(value: Any) -> str:
    """`Object.toString()` of the value as the reference runner holds it (maps print as {k=v})."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    return str(value)


def split_object_path(path: str) -> list[str]:
    """Dotted path → parts; `\\.` is a literal dot; empty parts are dropped (so '' is the root)."""
    parts: list[str] = []
    current: list[str] = []
    escape = False
    for char in path:
        if char == "\\":
            escape = True
            continue
        if char == "." and not escape:
            if current:
                parts.append("".join(current))
                current = []
            continue
        escape = False
        current.append(char)
    if current:
        parts.append("".join(current))
    return parts


class Stash:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    @staticmethod
    def holds_reference(value: Any) -> bool:
        if not isinstance(value, str) or not value:
            return False
        return value.startswith("$") or _EXTENDED_KEY.search(value) is not None

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value

    def clear(self) -> None:
        self.values.clear()

    def _unstash(self, key: str) -> Any:
        value = evaluate_path(self.values, key, None)
        if value is None:
            raise RunnerError(f"stashed value not found for key [{key}]")
        return value

    def get(self, key: str) -> Any:
        if key.startswith("$") and not key.startswith("${"):
            return self._unstash(key[1:])
        if not _EXTENDED_KEY.search(key):
            raise RunnerError(f"doesn't contain any stash keys [{key}]")
        return _EXTENDED_KEY.sub(lambda m: java_str(self._unstash(m.group(1))), key)

    def resolve(self, value: Any) -> Any:
        return self.get(value) if self.holds_reference(value) else value

    def replace(self, value: Any) -> Any:
        """Every stash reference inside a JSON-like value (keys included) replaced."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, child in value.items():
                key = java_str(self.get(key)) if self.holds_reference(key) else key
                if key in out:
                    raise RunnerError(f"unstashing caused a key conflict on [{key}]")
                out[key] = self.replace(child)
            return out
        if isinstance(value, list):
            return [self.replace(v) for v in value]
        return self.resolve(value)

    def replace_in_text(self, text: str) -> str:
        """Stash references in a raw (string) body: `${name}` anywhere, `"$name"` as a JSON string."""
        text = _EXTENDED_KEY.sub(lambda m: java_str(self._unstash(m.group(1))), text)
        return re.sub(r'"\$([A-Za-z_][\w.]*)"', lambda m: json.dumps(self._unstash(m.group(1))), text)


def evaluate_path(root: Any, path: str, stash: Stash | None) -> Any:
    node = root
    for part in split_object_path(path):
        if stash is not None and stash.holds_reference(part):
            part = java_str(stash.get(part))
        if isinstance(node, dict):
            if part == "_arbitrary_key_":
                if not node:
                    raise AssertionError(f"requested [{part}] but the map was empty")
                node = next(iter(node))
            else:
                node = node.get(part)
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except ValueError:
                raise AssertionError(f"element was a list, but [{part}] was not numeric") from None
            except IndexError:
                raise AssertionError(f"element was a list with {len(node)} elements, but [{part}] was out of "
                                     "bounds") from None
        else:
            raise AssertionError(f"no object found for [{part}] within object of class "
                                 f"[{type(node).__name__}]")
        if node is None:
            return None
    return node


# =====================================================================================
# Responses
# =====================================================================================

@dataclass
class ApiResponse:
    request: HttpRequest
    status: int
    content_type: str
    content: bytes
    parsed: Any = None
    is_parsed: bool = False

    @classmethod
    def build(cls, request: HttpRequest, status: int, content_type: str, content: bytes) -> ApiResponse:
        response = cls(request, status, content_type, content)
        media = content_type.split(";", 1)[0].strip().lower()
        if content and "json" in media:
            response.parsed, response.is_parsed = json.loads(content), True
        elif content and "yaml" in media:
            response.parsed, response.is_parsed = yaml.safe_load(content), True
        return response

    @property
    def body(self) -> Any:
        """What `$body` holds: the parsed body, the text (cat APIs), or None (HEAD)."""
        if self.is_parsed:
            return self.parsed
        if self.request.method == "HEAD":
            return None
        return self.content.decode("utf-8", "replace")

    def evaluate(self, path: str, stash: Stash) -> Any:
        if not self.is_parsed:
            # HEAD APIs (exists, ping) have no body: '' is true for 2xx, false otherwise.
            if path == "" and self.request.method == "HEAD":
                return self.status < 400
            return None
        return evaluate_path(self.parsed, path, stash)

    def describe(self, limit: int = 1500) -> str:
        text = self.content.decode("utf-8", "replace")
        if len(text) > limit:
            text = text[:limit] + "…"
        return f"{self.status} {text}" if text else str(self.status)


# =====================================================================================
# Execution
# =====================================================================================

CATCHES: dict[str, tuple[str, Callable[[int], bool]]] = {
    "bad_request": ("400", lambda s: s == 400),
    "unauthorized": ("401", lambda s: s == 401),
    "forbidden": ("403", lambda s: s == 403),
    "missing": ("404", lambda s: s == 404),
    "request_timeout": ("408", lambda s: s == 408),
    "conflict": ("409", lambda s: s == 409),
    "unavailable": ("503", lambda s: s == 503),
    "request": ("4xx|5xx other than 400, 401, 403, 404, 408, 409",
                lambda s: s >= 400 and s not in (400, 401, 403, 404, 408, 409)),
}
_DO_META = frozenset({"catch", "headers", "warnings", "allowed_warnings", "warnings_regex",
                      "allowed_warnings_regex", "node_selector"})


def split_do(do: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(api, params incl. body, meta: catch/headers/...)."""
    meta = {k: v for k, v in do.items() if k in _DO_META}
    calls = [(k, v) for k, v in do.items() if k not in _DO_META]
    if len(calls) != 1:
        raise RunnerError(f"a do section must call exactly one API, got {[k for k, _ in calls]}")
    api, params = calls[0]
    return str(api), dict(params or {}), meta


def is_regex(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 2 and value.strip().startswith("/") \
        and value.strip().endswith("/")


def values_equal(actual: Any, expected: Any) -> bool:
    """Equality as the reference runner applies it, with numbers equal across int/float."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int) and isinstance(actual, int):
            return expected == actual
        return float(expected) == float(actual)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            values_equal(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            values_equal(a, e) for a, e in zip(actual, expected))
    return type(actual) is type(expected) and actual == expected


def is_true_value(value: Any) -> bool:
    if value is None:
        return False
    text = java_str(value)
    return not (text == "" or text.lower() == "false" or text == "0")


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except TypeError:
        return repr(value)


class CaseRunner:
    """Runs one case (setup, section, teardown) against a live server, through an httpx.Client."""

    def __init__(self, http: Any, specs: dict[str, ApiSpec]) -> None:
        self.http = http
        self.specs = specs
        self.stash = Stash()
        self.response: ApiResponse | None = None
        self.trace: list[str] = []  # human-readable log of the steps, for failure messages

    # -- requests ---------------------------------------------------------------------
    def build_request(self, api: str, params: dict[str, Any], body: Any, headers: dict[str, str]
                      ) -> tuple[HttpRequest, set[int]]:
        if api in UNIMPLEMENTED_APIS:
            raise NotImplementedApi(api, f"needs {UNIMPLEMENTED_APIS[api]}")
        spec = self.specs.get(api)
        if spec is None:
            raise NotImplementedApi(api, "no API spec in the suite")
        texts: dict[str, str] = {}
        for name, value in params.items():
            text = param_text(value)
            if text is None:
                continue
            texts[name] = java_str(self.stash.get(text)) if self.stash.holds_reference(text) else text
        ignore = {int(code) for code in texts.pop("ignore", "").split(",") if code.strip()}
        texts.setdefault("error_trace", "true")  # as the reference runner: ask for error traces
        path_spec = choose_path(spec, set(texts))
        parts = set(_PART.findall(path_spec["path"]))
        query = []
        for name, text in texts.items():
            if name in parts:
                continue
            if name not in spec.params and name not in GLOBAL_PARAMS:
                raise RunnerError(f"path/param [{name}] not supported by [{api}] api")
            query.append(f"{quote(name, safe='')}={quote(text, safe=',*')}")
        path = _PART.sub(lambda m: quote(texts[m.group(1)], safe=",*"), path_spec["path"])
        if query:
            path += "?" + "&".join(query)
        content, content_type = self.encode_body(spec, body)
        if content is None and spec.body and spec.body.get("required"):
            raise RunnerError(f"body is required by [{api}] api")
        request_headers: dict[str, str] = {}
        if content_type:
            request_headers["Content-Type"] = content_type
        for name, value in headers.items():
            request_headers[name] = java_str(self.stash.resolve(value))
        method = choose_method(path_spec["methods"], content is not None)
        return HttpRequest(method, path, content, request_headers), ignore

    def encode_body(self, spec: ApiSpec, body: Any) -> tuple[bytes | None, str | None]:
        if body is None:
            return None, None
        ndjson = "application/x-ndjson" if spec.bulk_body else "application/json"
        if isinstance(body, str):
            return self.stash.replace_in_text(body).encode("utf-8"), ndjson
        if isinstance(body, list):
            lines = [self.stash.replace_in_text(item) if isinstance(item, str)
                     else json.dumps(self.stash.replace(item), ensure_ascii=False) for item in body]
            text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
            return text.encode("utf-8"), ndjson
        return json.dumps(self.stash.replace(body), ensure_ascii=False).encode("utf-8"), "application/json"

    def send(self, request: HttpRequest) -> ApiResponse:
        reply = self.http.request(request.method, request.path, content=request.body, headers=request.headers)
        return ApiResponse.build(request, reply.status_code, reply.headers.get("content-type", ""),
                                 reply.content)

    # -- steps --------------------------------------------------------------------------
    def run(self, case: Case) -> None:
        primary: BaseException | None = None
        try:
            for label, part in (("setup", case.suite.setup), ("test", case.section)):
                if part is not None:
                    self.run_steps(label, part.steps)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the teardown
            primary = exc
        if case.suite.teardown is not None:
            try:
                self.run_steps("teardown", case.suite.teardown.steps)
            except Exception as exc:  # noqa: BLE001
                if primary is None:
                    primary = exc
        if primary is not None:
            raise primary

    def run_steps(self, label: str, steps: list[dict[str, Any]]) -> None:
        for number, step in enumerate(steps, 1):
            if not isinstance(step, dict) or len(step) != 1:
                raise RunnerError(f"{label} step {number}: a step must have exactly one key, got {step!r}")
            (kind, payload), = step.items()
            where = f"{label} step {number} ({kind})"
            handler = getattr(self, f"step_{kind}", None)
            if handler is None:
                raise RunnerError(f"{where}: unsupported step [{kind}]")
            try:
                handler(payload)
            except NotImplementedApi:
                raise
            except (AssertionError, RunnerError) as exc:  # keep the type, add the context
                raise type(exc)(self.failure_message(where, step, str(exc))) from None

    def failure_message(self, where: str, step: dict[str, Any], detail: str) -> str:
        lines = [f"{where} failed: {detail}", f"  step: {_show(step)}"]
        if self.trace:
            shown = self.trace[-12:]
            lines.append(f"  requests ({len(self.trace)}, last {len(shown)}): " + "; ".join(shown))
        if self.response is not None:
            lines.append("  last request: " + self.response.request.describe().replace("\n", "\n    "))
            lines.append("  last response: " + self.response.describe())
        return "\n".join(lines)

    def step_skip(self, payload: Any) -> None:
        """Evaluated before the case runs (see `classify`); nothing to do here."""

    def step_do(self, do: dict[str, Any]) -> None:
        api, params, meta = split_do(do)
        body = params.pop("body", None)
        catch = meta.get("catch")
        if catch == "param":
            return  # a client-side parameter check: the reference runner sends nothing either
        request, ignore = self.build_request(api, params, body, dict(meta.get("headers") or {}))
        response = self.send(request)
        self.response = response
        self.stash.put("body", response.body)
        self.trace.append(f"{request.method} {request.path} -> {response.status}")
        error = response.status >= 400 and response.status not in ignore \
            and not (request.method == "HEAD" and response.status == 404)
        if not error:
            if catch:
                expected = CATCHES[catch][0] if catch in CATCHES else "4xx|5xx"
                raise AssertionError(f"expected [{expected}] status code but api [{api}] returned "
                                     f"[{response.status}]")
            return
        if not catch:
            raise AssertionError(f"expected [2xx] status code but api [{api}] returned [{response.status}]")
        if catch in CATCHES:
            label, accepts = CATCHES[catch]
            if not accepts(response.status):
                raise AssertionError(f"expected [{label}] status code but api [{api}] returned "
                                     f"[{response.status}]")
            return
        if is_regex(catch):
            pattern = catch.strip()[1:-1]
            error_value = response.evaluate("error", self.stash)
            if error_value is None:
                raise AssertionError("error was expected in the response")
            if re.search(pattern, java_str(error_value)) is None:
                raise AssertionError("the error message was expected to match the provided regex but "
                                     f"didn't: /{pattern}/ against {java_str(error_value)}")
            return
        raise RunnerError(f"catch value [{catch}] not supported")

    # -- assertions --------------------------------------------------------------------
    def actual(self, path: str) -> Any:
        if self.stash.holds_reference(path):
            return self.stash.get(path)
        if self.response is None:
            raise RunnerError(f"no response to evaluate [{path}] against")
        return self.response.evaluate(path, self.stash)

    def expected(self, value: Any) -> Any:
        return self.stash.replace(value)

    @staticmethod
    def _pair(payload: Any) -> tuple[str, Any]:
        if not isinstance(payload, dict) or len(payload) != 1:
            raise RunnerError(f"expected a single {{field: value}} pair, got {payload!r}")
        (path, value), = payload.items()
        return str(path), value

    def step_match(self, payload: dict[str, Any]) -> None:
        payload = dict(payload)
        epsilon = payload.pop("epsilon", None)
        path, expected = self._pair(payload)
        actual = self.actual(path)
        expected = self.expected(expected)
        if is_regex(expected):
            if not isinstance(actual, str):
                raise AssertionError(f"field [{path}] was expected to be of type String but is "
                                     f"[{type(actual).__name__}]: {_show(actual)}")
            pattern = expected.strip()[1:-1]
            if re.search(pattern, actual, re.VERBOSE) is None:
                raise AssertionError(f"field [{path}] was expected to match the provided regex but didn't\n"
                                     f"    regex: /{pattern}/\n    actual: {actual!r}")
            return
        if epsilon is not None and isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
            if abs(float(actual) - float(expected)) > float(epsilon):
                raise AssertionError(f"field [{path}] doesn't match {expected} within {epsilon}: {actual}")
            return
        if not values_equal(actual, expected):
            raise AssertionError(f"field [{path}] didn't match the expected value\n"
                                 f"    expected: {_show(expected)}\n    actual:   {_show(actual)}")

    def step_is_true(self, path: Any) -> None:
        path = "" if path is None else str(path)
        actual = self.actual(path)
        if not is_true_value(actual):
            raise AssertionError(f"field [{path}] doesn't have a true value: {_show(actual)}")

    def step_is_false(self, path: Any) -> None:
        path = "" if path is None else str(path)
        actual = self.actual(path)
        if is_true_value(actual):
            raise AssertionError(f"field [{path}] has a true value but it shouldn't: {_show(actual)}")

    def step_length(self, payload: dict[str, Any]) -> None:
        path, expected = self._pair(payload)
        expected = int(self.expected(expected))
        actual = self.actual(path)
        if isinstance(actual, (str, list, dict)):
            if len(actual) != expected:
                raise AssertionError(f"field [{path}] doesn't have length [{expected}]: {len(actual)}, "
                                     f"{_show(actual)}")
            return
        raise AssertionError(f"field [{path}]: length of unsupported type [{type(actual).__name__}]")

    def _compare(self, payload: dict[str, Any], name: str, check: Callable[[Any, Any], bool]) -> None:
        path, expected = self._pair(payload)
        expected = self.expected(expected)
        actual = self.actual(path)
        comparable = (isinstance(actual, (int, float)) and not isinstance(actual, bool)
                      and isinstance(expected, (int, float)) and not isinstance(expected, bool)) or (
            isinstance(actual, str) and isinstance(expected, str))
        if not comparable:
            raise AssertionError(f"field [{path}] is not comparable with [{expected}]: {_show(actual)}")
        if not check(actual, expected):
            raise AssertionError(f"field [{path}] is not {name} [{expected}]: {_show(actual)}")

    def step_gt(self, payload: dict[str, Any]) -> None:
        self._compare(payload, "greater than", lambda a, e: a > e)

    def step_gte(self, payload: dict[str, Any]) -> None:
        self._compare(payload, "greater than or equal to", lambda a, e: a >= e)

    def step_lt(self, payload: dict[str, Any]) -> None:
        self._compare(payload, "less than", lambda a, e: a < e)

    def step_lte(self, payload: dict[str, Any]) -> None:
        self._compare(payload, "less than or equal to", lambda a, e: a <= e)

    def step_close_to(self, payload: dict[str, Any]) -> None:
        path, spec = self._pair(payload)
        spec = self.expected(spec)
        actual = self.actual(path)
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            raise AssertionError(f"field [{path}] is not a number: {_show(actual)}")
        if abs(float(actual) - float(spec["value"])) > float(spec["error"]):
            raise AssertionError(f"field [{path}] is not within {spec['error']} of {spec['value']}: {actual}")

    def step_contains(self, payload: dict[str, Any]) -> None:
        path, expected = self._pair(payload)
        expected = self.expected(expected)
        actual = self.actual(path)
        if not isinstance(actual, list):
            raise AssertionError(f"field [{path}] is not a list: {_show(actual)}")
        if isinstance(expected, dict):
            found = any(isinstance(item, dict) and all(k in item and values_equal(item[k], v)
                                                       for k, v in expected.items()) for item in actual)
        else:
            found = any(values_equal(item, expected) for item in actual)
        if not found:
            raise AssertionError(f"field [{path}] does not contain {_show(expected)}: {_show(actual)}")

    def step_set(self, payload: dict[str, Any]) -> None:
        for path, name in payload.items():
            self.stash.put(str(name), self.actual(str(path)))

    def step_transform_and_set(self, payload: dict[str, Any]) -> None:
        for name, spec in payload.items():
            found = re.fullmatch(r"#base64EncodeCredentials\((\w[\w.]*),(\w[\w.]*)\)", str(spec).strip())
            if not found:
                raise RunnerError(f"unsupported transformation [{spec}]")
            user, secret = (java_str(self.actual(found.group(i))) for i in (1, 2))
            self.stash.put(str(name), base64.b64encode(f"{user}:{secret}".encode()).decode())


# =====================================================================================
# Cleanup between cases
# =====================================================================================

def delete_all_indices(http: Any) -> list[str]:
    """Deletes every index one by one (wildcard deletes are refused by design). Returns the names."""
    reply = http.get("/_cat/indices", params={"format": "json", "expand_wildcards": "all"})
    if reply.status_code != 200:
        raise RuntimeError(f"cleanup: GET /_cat/indices answered {reply.status_code}: {reply.text[:500]}")
    names = [row["index"] for row in reply.json()]
    for name in names:
        deleted = http.delete("/" + quote(name, safe=""))
        if deleted.status_code not in (200, 404):
            raise RuntimeError(f"cleanup: DELETE /{name} answered {deleted.status_code}: "
                               f"{deleted.text[:500]}")
    return names


# =====================================================================================
# Keeping the API tables honest
# =====================================================================================

def router_drift(specs: dict[str, ApiSpec]) -> list[str]:
    """Notes where `UNIMPLEMENTED_APIS` / `IMPLEMENTED_APIS` disagree with Strongroom's router.

    Each spec path is filled with sample values and resolved by `build_router()`; an API counts as
    routed when any of its paths resolves for any of its methods. Informational: printed by the
    summary so that a table entry is removed when the route lands (other engineers add routes).
    """
    try:
        from strongroom.api.app import build_router
        router = build_router()
    except Exception as exc:  # noqa: BLE001 - the tree is being edited; report, never fail
        return [f"router check skipped: cannot build the router ({type(exc).__name__}: {exc})"]
    samples = {"index": "conformance-sample", "id": "1", "name": "sample", "metric": "docs",
               "task_id": "node:1", "scroll_id": "sample", "type": "_doc"}

    def routed(api: str) -> bool:
        spec = specs.get(api)
        if spec is None:
            return False
        for path in spec.paths:
            if path.get("deprecated"):
                continue
            raw = _PART.sub(lambda m: samples.get(m.group(1), "sample"), path["path"])
            if any(router.resolve(method, raw)[0] is not None for method in path["methods"]):
                return True
        return False

    notes = [f"[{api}] now has a route: remove it from UNIMPLEMENTED_APIS"
             for api in sorted(UNIMPLEMENTED_APIS) if routed(api)]
    notes += [f"[{api}] has no route any more: check IMPLEMENTED_APIS / UNIMPLEMENTED_APIS"
              for api in sorted(IMPLEMENTED_APIS) if not routed(api)]
    return notes


# =====================================================================================
# expected_failures.md
# =====================================================================================

def render_expected_failures(cases: list[Case]) -> str:
    rows = []
    counts: dict[str, int] = {}
    for case in cases:
        verdict = classify(case)
        if verdict.kind == "run":
            continue
        counts[verdict.group] = counts.get(verdict.group, 0) + 1
        status = "xfail (strict)" if verdict.kind == "xfail" else "skipped"
        cell = verdict.reason.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{case.id}` | {status} | {cell} |")
    lines = [
        "# Conformance: cases not run or not passing",
        "",
        "Generated from the tables in `runner.py` (`UNIMPLEMENTED_APIS`, `UNSUPPORTED_FEATURES`,",
        "`SKIP_CASES`, `XFAIL`) by `.venv/bin/python tests/conformance/runner.py --write-expected-failures`;",
        "do not edit by hand.",
        "",
        "Skipped: the case needs an API or feature Strongroom does not have yet (or cannot apply).",
        "xfail: the case runs and fails because Strongroom answers differently from Elasticsearch/OpenSearch",
        "in an implemented API; these are the server bugs to fix. Remove the `XFAIL` entry with the fix.",
        "",
        "| group | cases |",
        "| --- | ---: |",
        *[f"| {group} | {count} |"
          for group, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "",
        f"{len(rows)} of {len(cases)} cases.",
        "",
        "| case | status | reason |",
        "| --- | --- | --- |",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    cases = collect_cases()
    text = render_expected_failures(cases)
    if "--write-expected-failures" in argv:
        EXPECTED_FAILURES_MD.write_text(text, encoding="utf-8")
        print(f"wrote {EXPECTED_FAILURES_MD}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
