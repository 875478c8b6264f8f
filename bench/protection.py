"""What protection at rest costs at ingest: the demo mapping (sealed sources, blind tokens for names,
IDs, phones, addresses, dates and case notes) against the same fields unprotected (sources still
sealed), in the same process and run, through the same session write path (batches of 2,000).

    .venv/bin/python bench/protection.py --docs 10000

Prints docs/s for both and the ratio protected / plain. Results: bench/results/protection-<time>.json
(not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from argon2 import PasswordHasher

from strongroom.demo import RESIDENTS_BODY, generate_residents
from strongroom.engine.node import Engine
from strongroom.security.gate import Gate
from strongroom.security.session import DocWrite
from strongroom.security.users import SecurityStore

ROOT = Path(__file__).resolve().parent
BATCH = 2000


def plain_mappings() -> dict[str, Any]:
    properties = {name: {k: v for k, v in spec.items() if k not in ("protect", "blind_prefixes")}
                  for name, spec in RESIDENTS_BODY["mappings"]["properties"].items()}
    return {**RESIDENTS_BODY["mappings"], "properties": properties}


async def load(docs: list[tuple[str, dict[str, Any]]], mappings: dict[str, Any]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Path(tmp) / "data")
        try:
            store = SecurityStore(Path(tmp) / "data", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
            store.bootstrap("benchmark passphrase, not secret")
            session = Gate(engine, store).system_session("bench")
            # PII in the unprotected copy is only logged: the point is to measure the same data.
            await session.create_index("r", {"index": {"number_of_shards": 1, "pii_detection": "warn"}}, mappings)
            started = time.perf_counter()
            for start in range(0, len(docs), BATCH):
                await session.write([DocWrite("index", "r", i, d, orjson.dumps(d)) for i, d in docs[start:start + BATCH]])
            return len(docs) / (time.perf_counter() - started)
        finally:
            engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)  # the plain copy warns of personal data on every document
    docs = list(generate_residents(args.docs))
    plain = asyncio.run(load(docs, plain_mappings()))
    protected = asyncio.run(load(docs, RESIDENTS_BODY["mappings"]))
    result = {"docs": args.docs, "plain_docs_per_s": round(plain), "protected_docs_per_s": round(protected),
              "ratio": round(protected / plain, 3), "machine": platform.platform(), "python": platform.python_version()}
    print(json.dumps(result, indent=1))
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / f"protection-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
