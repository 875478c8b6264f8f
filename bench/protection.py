"""What protection at rest costs at ingest: the demo mapping (sealed sources, blind tokens for names,
IDs, phones, addresses, dates and case notes) against the same fields unprotected (sources still
sealed), in the same process and run, through the same session write path (batches of 2,000).

    .venv/bin/python bench/protection.py --docs 10000

A third load repeats the protected one with ingest worker processes (security/ingest.py;
`ingest.workers`: auto, at least one), which derive tokens and seal while the session writes.
Prints docs/s for each, the ratio protected / plain and protected with workers / protected. Results: bench/results/protection-<time>.json
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
from strongroom.crypto.keys import MasterKey
from strongroom.engine.node import Engine
from strongroom.security.gate import Gate
from strongroom.security.ingest import MIN_PARALLEL, IngestPool, default_workers
from strongroom.security.vault import Vault
from strongroom.security.session import DocWrite
from strongroom.security.users import SecurityStore

ROOT = Path(__file__).resolve().parent
BATCH = 2000


def plain_mappings() -> dict[str, Any]:
    properties = {name: {k: v for k, v in spec.items() if k not in ("protect", "blind_prefixes")}
                  for name, spec in RESIDENTS_BODY["mappings"]["properties"].items()}
    return {**RESIDENTS_BODY["mappings"], "properties": properties}


async def load(docs: list[tuple[str, dict[str, Any]]], mappings: dict[str, Any], workers: int = 0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Path(tmp) / "data")
        pool = IngestPool(workers) if workers else None
        try:
            store = SecurityStore(Path(tmp) / "data", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
            store.bootstrap("benchmark passphrase, not secret")
            session = Gate(engine, store, vault=Vault(MasterKey.generate(), ingest=pool)).system_session("bench")
            # PII in the unprotected copy is only logged: the point is to measure the same data.
            await session.create_index("r", {"index": {"number_of_shards": 1, "pii_detection": "warn"}}, mappings)
            if pool is not None:  # the workers start (and import) on first use: not part of the rate
                warm = docs[:MIN_PARALLEL]
                await session.create_index("w", {"index": {"number_of_shards": 1, "pii_detection": "warn"}}, mappings)
                await session.write([DocWrite("index", "w", i, d, orjson.dumps(d)) for i, d in warm])
            started = time.perf_counter()
            for start in range(0, len(docs), BATCH):
                await session.write([DocWrite("index", "r", i, d, orjson.dumps(d)) for i, d in docs[start:start + BATCH]])
            return len(docs) / (time.perf_counter() - started)
        finally:
            engine.close()
            if pool is not None:
                pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)  # the plain copy warns of personal data on every document
    docs = list(generate_residents(args.docs))
    plain = asyncio.run(load(docs, plain_mappings()))
    protected = asyncio.run(load(docs, RESIDENTS_BODY["mappings"]))
    workers = max(1, default_workers())
    parallel = asyncio.run(load(docs, RESIDENTS_BODY["mappings"], workers))
    result = {"docs": args.docs, "plain_docs_per_s": round(plain), "protected_docs_per_s": round(protected),
              "ratio": round(protected / plain, 3), "ingest_workers": workers,
              "protected_with_workers_docs_per_s": round(parallel), "workers_ratio": round(parallel / protected, 3),
              "machine": platform.platform(), "python": platform.python_version()}
    print(json.dumps(result, indent=1))
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / f"protection-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
