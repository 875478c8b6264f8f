"""What an in-index checkpoint document costs tantivy's terms aggregation, in raw tantivy.

Until 2026-11-28 each shard commit added one marker document (the committed sequence number) and
deleted the previous one, and every query excluded it with a `must_not`; the checkpoint now lives in
a file beside the commit (`engine/shard.py`). This measures why. One document without a value makes
a segment's fast column "optional", and tantivy's aggregations then read it through an index; a
marker carrying values avoids that but still needs the exclusion, which costs per document. The same
residents' birthplaces are built three ways in one process and a terms aggregation over every
document is timed:

- `raw`: one commit, no marker (the baseline, and what the engine does now);
- `marker`: five commits, each deleting the old marker and adding a new one without column values;
- `filled`: the same with the marker carrying a value in every fast column;
- and, for the two marker indices, the aggregation under the query that excludes the marker.

Usage: .venv/bin/python bench/engine_marker.py [--docs 100000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any
from pathlib import Path

import orjson
import tantivy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import median_ms, residents  # noqa: E402


def build(places: list[str], tmp: str, *, commits: int, marker: bool, filled: bool) -> tuple[tantivy.Searcher, Any]:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", tokenizer_name="raw", stored=True)
    builder.add_text_field("birthplace", tokenizer_name="raw", fast=True, index_option="basic")
    builder.add_integer_field("_seq_no", fast=True, indexed=True)
    schema = builder.build()
    index = tantivy.Index(schema, path=tmp)
    writer = index.writer(64 << 20, 1)
    per = len(places) // commits
    for c in range(commits):
        for i in range(c * per, (c + 1) * per):
            writer.add_document(tantivy.Document(_id=f"r{i}", birthplace=places[i], _seq_no=i))
        if marker:
            writer.delete_documents_by_term("_id", "")
            writer.add_document(tantivy.Document(_id="", birthplace="", _seq_no=-1) if filled
                                else tantivy.Document(_id=""))
        writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index.searcher(), schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    places = [orjson.loads(source)["birthplace"] for _id, source in residents(args.docs)]
    request = {"agg": {"terms": {"field": "birthplace", "size": 25}}}
    everything = tantivy.Query.all_query()
    rows = []
    for name, commits, marker, filled in (("raw", 1, False, False), ("marker", 5, True, False),
                                          ("filled", 5, True, True)):
        with tempfile.TemporaryDirectory(prefix="strongroom-marker-") as tmp:
            searcher, schema = build(places, tmp, commits=commits, marker=marker, filled=filled)
            excluded = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, everything),
                (tantivy.Occur.MustNot, tantivy.Query.term_query(schema, "_id", ""))])
            whole = median_ms(lambda: searcher.aggregate(everything, request), args.repeat)  # noqa: B023
            scoped = median_ms(lambda: searcher.aggregate(excluded, request), args.repeat)  # noqa: B023
            rows.append((name, searcher.num_segments, whole, scoped))
    base = rows[0][2]
    print(f"{args.docs:,} birthplaces; terms aggregation, median ms of {args.repeat}\n")
    print("| index | segments | all documents | ratio to raw | marker excluded | ratio to raw |")
    print("|---|---|---|---|---|---|")
    for name, segments, whole, scoped in rows:
        print(f"| {name} | {segments} | {whole:.3f} | {whole / base:.2f}× | {scoped:.3f} | {scoped / base:.2f}× |")


if __name__ == "__main__":
    main()
