"""`strongroom inspect leakage`: distinct tokens and the largest shared count per blind field,
read from the index files alone (no key), with a plain-words risk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from click.testing import CliRunner

from strongroom.cli import main
from strongroom.server import open_node
from strongroom.security.session import DocWrite
from strongroom.settings import load_settings

ENV = {"STRONGROOM_BOOTSTRAP_PASSWORD": "a long enough bootstrap passphrase"}


def test_leakage_report_counts_tokens_without_keys(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "config"
    node = open_node(data, config, load_settings(config), environ=ENV)
    try:
        session = node.gate.system_session("test")

        async def load() -> None:
            await session.create_index("people", {"number_of_shards": 2}, {"properties": {
                "phone": {"type": "keyword", "protect": "blind"},
                "sex": {"type": "keyword", "protect": "blind"},
                "name": {"type": "text", "protect": "blind"},
                "city": {"type": "keyword"}}})
            docs = [{"phone": f"139{n:08d}", "sex": "MF"[n % 2], "name": f"name {n}", "city": "x"} for n in range(200)]
            await session.write([DocWrite("index", "people", str(n), d, orjson.dumps(d)) for n, d in enumerate(docs)],
                                refresh="true")
        asyncio.run(load())
    finally:
        node.close()
    master = config / "master.key"
    master.rename(tmp_path / "elsewhere.key")  # the inspection needs no key at all
    result = CliRunner().invoke(main, ["inspect", "leakage", "--index", "people", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["field"]: row for row in orjson.loads(result.output)}
    assert set(rows) == {"phone", "sex", "name"}  # only blind fields
    assert rows["phone"]["documents"] == 200 and rows["phone"]["distinct_tokens"] >= 190
    assert rows["phone"]["largest_count"] == 1 and rows["phone"]["risk"] == "low"
    assert rows["sex"]["distinct_tokens"] == 2 and rows["sex"]["largest_count"] == 100
    assert rows["sex"]["risk"].startswith("HIGH")
    assert rows["name"]["distinct_tokens"] is None and rows["name"]["documents"] == 200
    table = CliRunner().invoke(main, ["inspect", "leakage", "--index", "people", "--data-dir", str(data)])
    assert table.exit_code == 0 and "HIGH" in table.output and "139" not in table.output
