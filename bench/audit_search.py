"""Searching the audit log for its newest records: reading a segment from the end against reading it whole.

Writes `--records` audit records (shaped like a search request's) into one segment with
`security.audit.AuditLog`, then times, in one process, what the console's audit page asks for (the
newest 200 records, and the newest 200 of one identity) two ways:

- `whole`: read the segment, split it into lines, parse from the last (the search before 2026-11-28);
- `backwards`: `AuditLog.search`, which reads the segment from the end in 1 MiB chunks and stops.

Ratio = backwards / whole. Usage: .venv/bin/python bench/audit_search.py [--records 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import median_ms  # noqa: E402


def main() -> None:
    from strongroom.security.audit import AuditLog, _complete_lines, _segments

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-audit-") as tmp:
        directory = Path(tmp) / "audit"
        with AuditLog(directory, Ed25519PrivateKey.generate(), segment_bytes=1 << 40) as audit:
            for i in range(args.records):
                audit.append({"identity": f"analyst-{i % 50}", "auth": "basic", "address": "10.0.0.7",
                              "method": "POST", "path": "/residents/_search", "action": "/{index}/_search",
                              "indices": ["residents"], "query": {"term": {"national_id": f"h:{i:024x}"}},
                              "revealed": [["residents", f"r{i}"]], "purpose": "CASE-2026-117", "status": 200,
                              "outcome": "ok", "took_ms": 2})
            segments = _segments(directory)
            size = sum(path.stat().st_size for _first, path in segments)

            def whole(identity: str | None) -> list[dict[str, object]]:
                found = []
                for _first, path in reversed(segments):
                    for line in reversed(_complete_lines(path.read_bytes())):
                        record = orjson.loads(line)
                        if identity is None or record.get("identity") == identity:
                            found.append(record)
                            if len(found) >= 200:
                                return found
                return found

            print(f"{args.records:,} records, {len(segments)} segment(s), {size / (1 << 20):.1f} MiB; "
                  f"median ms of {args.repeat}\n")
            print("| query | whole | backwards | backwards ÷ whole |")
            print("|---|---|---|---|")
            for name, identity in (("newest 200", None), ("newest 200 of one identity", "analyst-7")):
                assert whole(identity) == audit.search(identity=identity, size=200)
                slow = median_ms(lambda: whole(identity), args.repeat)  # noqa: B023
                fast = median_ms(lambda: audit.search(identity=identity, size=200), args.repeat)  # noqa: B023
                print(f"| {name} | {slow:.2f} | {fast:.2f} | {fast / slow:.3f}× |")


if __name__ == "__main__":
    main()
