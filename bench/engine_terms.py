"""A few values in one field: tantivy's term set query against a union of term queries, side by side.

Strongroom compiles a `terms` query (and `ids`, and the blind date tokens a protected date range
becomes) to a union of term queries up to 16 values and to tantivy's term set beyond
(engine/plan.py, `Compiler._term_set`). This benchmark is why: a term set reads every posting of every
value into a bit set of the segment before anything can skip through it, so inside an intersection
led by a rarer clause it costs as much as reading the whole filter; a union of term queries is
skipped through. Alone (nothing to intersect with) both read everything.

Builds a raw tantivy index of demo residents (name as CJK bigrams, birthplace, birth year and
birth month as keywords) and times, in one process, median ms of `--repeat` searches (top 10, with
the count, as Strongroom searches):

- "combined": name bigrams (any) AND birthplace AND the birth-year filter — the issue-9 combined
  query, whose year range Strongroom turns into one blind year token;
- "months, k values": name AND birthplace AND any of k birth months;
- "alone, k values": only the k birth months.

Ratio = term set ÷ union in the same run (above 1: the union is faster). Usage:
    .venv/bin/python bench/engine_terms.py [--docs 1000000] [--repeat 50] [--values 2,4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import tantivy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import median_ms, residents  # noqa: E402

Occur = tantivy.Occur


def bigrams(name: str) -> list[str]:
    return [name] if len(name) < 2 else [name[i:i + 2] for i in range(len(name) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--queries", type=int, default=20, help="Different residents' values per row.")
    parser.add_argument("--values", default="2,4,8,16,32,64",
                        help="Comma-separated value counts of the month rows (at most the months present).")
    args = parser.parse_args()
    counts = [int(k) for k in args.values.split(",") if k.strip()]
    if not counts or any(k < 1 for k in counts):
        parser.error("--values lists positive counts")

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("name", tokenizer_name="whitespace")
    for keyword in ("birthplace", "year", "month"):
        builder.add_text_field(keyword, tokenizer_name="raw")
    schema = builder.build()
    rows = [orjson.loads(source) for _id, source in residents(args.docs)]
    months = sorted({row["birth_date"][:7] for row in rows})
    with tempfile.TemporaryDirectory(prefix="strongroom-terms-") as tmp:
        index = tantivy.Index(schema, path=tmp)
        writer = index.writer(heap_size=128 << 20, num_threads=1)
        for row in rows:
            writer.add_document(tantivy.Document(name=" ".join(bigrams(row["name"])), birthplace=row["birthplace"],
                                                 year=row["birth_date"][:4], month=row["birth_date"][:7]))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        searcher = index.searcher()
        rng = random.Random(7)
        picks = [rows[rng.randrange(len(rows))] for _ in range(args.queries)]

        def term(field: str, value: str) -> tantivy.Query:
            return tantivy.Query.term_query(schema, field, value)

        def union(field: str, values: list[str]) -> tantivy.Query:
            if len(values) == 1:
                return term(field, values[0])
            return tantivy.Query.boolean_query([(Occur.Should, term(field, v)) for v in values])

        def term_set(field: str, values: list[str]) -> tantivy.Query:
            return tantivy.Query.term_set_query(schema, field, values)

        def led(row: dict[str, Any], values_filter: tantivy.Query) -> tantivy.Query:
            return tantivy.Query.boolean_query([
                (Occur.Must, union("name", bigrams(row["name"]))),
                (Occur.Must, tantivy.Query.const_score_query(term("birthplace", row["birthplace"]), 0.0)),
                (Occur.Must, tantivy.Query.const_score_query(values_filter, 0.0))])

        def month_values(row: dict[str, Any], k: int) -> list[str]:
            at = months.index(row["birth_date"][:7])
            return months[max(0, at - k // 2):][:k]

        cases: list[tuple[str, Any]] = [("combined (year filter, 1 value)",
                                         lambda make, row: led(row, make("year", [row["birth_date"][:4]])))]
        for k in counts:
            cases.append((f"months, {k} values", lambda make, row, k=k: led(row, make("month", month_values(row, k)))))
        for k in sorted({1, *counts[-2:]}):
            cases.append((f"alone, {k} values", lambda make, row, k=k: make("month", month_values(row, k))))

        print(f"{args.docs:,} documents, {searcher.num_segments} segment(s); median ms of {args.repeat} runs of "
              f"{args.queries} queries each, divided by {args.queries}\n")
        print("| query | term set ms | union of term queries ms | term set ÷ union |")
        print("|---|---|---|---|")
        for name, build in cases:
            sets = [build(term_set, row) for row in picks]
            unions = [build(union, row) for row in picks]
            for a, b in zip(sets, unions):
                assert searcher.search(a, 10, count=True).count == searcher.search(b, 10, count=True).count
            set_ms = median_ms(lambda qs=sets: [searcher.search(q, 10, count=True) for q in qs], args.repeat)
            union_ms = median_ms(lambda qs=unions: [searcher.search(q, 10, count=True) for q in qs], args.repeat)
            set_ms, union_ms = set_ms / len(picks), union_ms / len(picks)
            print(f"| {name} | {set_ms:.3f} | {union_ms:.3f} | {set_ms / union_ms:.2f}× |")


if __name__ == "__main__":
    main()
