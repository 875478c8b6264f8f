"""How the engine counts matching documents: the ways tantivy can answer "how many", side by side.

Builds a raw tantivy index of demo residents (birthplace and gender as keywords) and times, per
query, in one process:

- `value_count`: a value-count aggregation over `_seq_no` (`shard.count_docs`);
- `search`: a top-1 search with a count (BM25 scored);
- `const`: the same under a constant score;
- `live docs`: for match_all only, the searcher's live-document count (no query).

Ratios are against `value_count` in the same run. (With Strongroom's old in-index checkpoint
document, which had no `_seq_no`, the column was "optional" and the value count the slowest of the
three: see bench/engine_marker.py.) Usage:
    .venv/bin/python bench/engine_count.py [--docs 200000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import orjson
import tantivy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import median_ms, residents  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", tokenizer_name="raw")
    builder.add_integer_field("_seq_no", fast=True)
    builder.add_text_field("birthplace", tokenizer_name="raw", fast=True)
    builder.add_text_field("gender", tokenizer_name="raw", fast=True)
    schema = builder.build()
    with tempfile.TemporaryDirectory(prefix="strongroom-count-") as tmp:
        index = tantivy.Index(schema, path=tmp)
        writer = index.writer(heap_size=128 << 20, num_threads=1)
        for seq, (doc_id, source) in enumerate(residents(args.docs)):
            doc = orjson.loads(source)
            writer.add_document(tantivy.Document(_id=doc_id, _seq_no=seq, birthplace=doc["birthplace"],
                                                 gender=doc["gender"]))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        searcher = index.searcher()
        first = orjson.loads(residents(args.docs)[0][1])

        queries = {"match_all": tantivy.Query.all_query(),
                   "term gender (half)": tantivy.Query.term_query(schema, "gender", first["gender"]),
                   "term birthplace": tantivy.Query.term_query(schema, "birthplace", first["birthplace"])}
        value_count = {"n": {"value_count": {"field": "_seq_no"}}}
        print(f"{args.docs:,} documents, {searcher.num_segments} segment(s); median ms of {args.repeat}\n")
        print("| query | matches | value_count | search | const | live docs | const ÷ value_count | live ÷ value_count |")
        print("|---|---|---|---|---|---|---|---|")
        for name, raw in queries.items():
            query = raw
            const = tantivy.Query.const_score_query(query, 0.0)
            matches = searcher.search(const, 1, count=True).count
            assert matches == int(searcher.aggregate(query, value_count)["n"]["value"])
            base = median_ms(lambda: searcher.aggregate(query, value_count), args.repeat)  # noqa: B023
            search = median_ms(lambda: searcher.search(query, 1, count=True), args.repeat)  # noqa: B023
            constant = median_ms(lambda: searcher.search(const, 1, count=True), args.repeat)  # noqa: B023
            live = live_ratio = "—"
            if name == "match_all":
                assert searcher.num_docs == matches
                live_ms = median_ms(lambda: searcher.num_docs, args.repeat)
                live, live_ratio = f"{live_ms:.3f}", f"{live_ms / base:.3f}×"
            print(f"| {name} | {matches:,} | {base:.3f} | {search:.3f} | {constant:.3f} | {live} | "
                  f"{constant / base:.2f}× | {live_ratio} |")


if __name__ == "__main__":
    main()
