"""OpenSearch's YAML REST tests against a live Strongroom: one pytest case per test section.

Case ids are `<api>/<file>::<section name>`. Which cases are skipped or expected to fail is decided
by the tables in `conformance/runner.py`; `conformance/expected_failures.md` lists them all.
The last test prints a one-line summary of the conformance cases run in this session.
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from conformance import runner
from live import LiveServer

CASES = runner.collect_cases()
SPECS = runner.load_specs()

# case id → (outcome, group): outcome is passed / failed / skipped / xfailed / xpassed.
RESULTS: dict[str, tuple[str, str]] = {}


def _param(case: runner.Case) -> object:
    verdict = runner.classify(case)
    marks = []
    if verdict.kind == "xfail":
        marks.append(pytest.mark.xfail(reason=verdict.reason, strict=True, raises=AssertionError))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def conformance_http(server: LiveServer) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(server.ca))
    with httpx.Client(base_url=server.url, verify=context, auth=("admin", server.password),
                      timeout=60.0) as http:
        yield http
        runner.delete_all_indices(http)  # leave the shared server as the other test files expect it


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_conformance(case: runner.Case, conformance_http: httpx.Client) -> None:
    verdict = runner.classify(case)
    if verdict.kind == "skip":
        RESULTS[case.id] = ("skipped", verdict.group)
        pytest.skip(verdict.reason)
    try:
        runner.delete_all_indices(conformance_http)  # between files and between sections of a file
        runner.CaseRunner(conformance_http, SPECS).run(case)
    except runner.NotImplementedApi as exc:
        RESULTS[case.id] = ("skipped", f"needs {runner.UNIMPLEMENTED_APIS.get(exc.api, exc.api)}")
        pytest.skip(str(exc))
    except AssertionError:
        RESULTS[case.id] = ("xfailed", verdict.group) if verdict.kind == "xfail" else ("failed", "")
        raise
    except BaseException:  # runner errors, connection errors: failures even for xfail cases
        RESULTS[case.id] = ("failed", "")
        raise
    RESULTS[case.id] = ("xpassed", verdict.group) if verdict.kind == "xfail" else ("passed", "")


def test_conformance_pass_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints passed / failed / skipped / xfailed counts, and holds the line: at least 95% of the
    cases that run pass, and the list of cases not run is current."""
    outcomes = Counter(outcome for outcome, _ in RESULTS.values())
    skipped_by = Counter(group for outcome, group in RESULTS.values() if outcome == "skipped")
    ran = outcomes["passed"] + outcomes["failed"] + outcomes["xfailed"] + outcomes["xpassed"]
    rate = f"{100.0 * outcomes['passed'] / ran:.1f}% of those run" if ran else "none run"
    line = (f"conformance: {len(RESULTS)} cases: {outcomes['passed']} passed, {outcomes['failed']} failed, "
            f"{outcomes['skipped']} skipped, {outcomes['xfailed']} xfailed"
            + (f", {outcomes['xpassed']} xpassed (strict: remove from XFAIL)" if outcomes["xpassed"] else "")
            + f" ({rate})")
    details = [f"  skipped: {count:3d}  {group}" for group, count in skipped_by.most_common()]
    details += [f"  note: {note}" for note in runner.router_drift(SPECS)]
    if runner.EXPECTED_FAILURES_MD.read_text(encoding="utf-8") != runner.render_expected_failures(CASES):
        details.append("  note: conformance/expected_failures.md is out of date: run "
                       "`.venv/bin/python tests/conformance/runner.py --write-expected-failures`")
    with capsys.disabled():
        print("\n" + line)
        for detail in details:
            print(detail)
    if len(RESULTS) == len(CASES):  # Only a full run can judge the rate (not a -k selection).
        assert ran and outcomes["passed"] / ran >= 0.95, line
        assert runner.EXPECTED_FAILURES_MD.read_text(encoding="utf-8") == runner.render_expected_failures(CASES)
