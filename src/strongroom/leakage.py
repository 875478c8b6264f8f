"""`strongroom inspect leakage`: what blind tokens reveal to whoever holds the index files.

Blind tokens hide values but not equality or frequency. For each blind field this reports how many
documents hold it, how many distinct tokens it has, and how many documents share the most common
one: a field with few distinct tokens (gender, a yes/no flag) or one token shared by a large part
of the documents (a common region prefix, a birth year) is closer to readable than it looks.

It needs no keys: it reads only what a thief would, the tokens in the index. Keyword-like blind
fields (keywords, numbers, booleans, dates) are counted from their token columns; blind text fields
are reported with their document count only (their tokens are terms of text, without a column).
Counts are exact up to 65,536 distinct tokens per shard; beyond that the distinct count is the
sum of tantivy's per-shard cardinality estimates (an upper bound) and the row says `approximate`.
"""

from __future__ import annotations

from typing import Any

import tantivy

from .engine.index import Index
from .engine.shard import count_docs


EXACT_LIMIT = 65_536


def leakage_report(index: Index) -> list[dict[str, Any]]:
    rows = []
    for path, field in sorted(index.mapping.fields.items()):
        if field.protect != "blind":
            continue
        slot = index.slots.get(path)
        if slot is None:
            continue
        row: dict[str, Any] = {"field": path, "type": field.type, "documents": 0, "distinct_tokens": None,
                               "largest_count": None, "largest_share": None, "approximate": False}
        counts: dict[str, int] = {}
        estimate = 0
        for shard in index.shards:
            searcher = shard.searcher
            holding = tantivy.Query.term_query(shard.schema, "_field_names", path)
            row["documents"] += count_docs(searcher, holding)
            if slot.kind != "keyword":
                continue
            result = searcher.aggregate(tantivy.Query.all_query(), {
                "top": {"terms": {"field": slot.name, "size": EXACT_LIMIT}},
                "distinct": {"cardinality": {"field": slot.name}}})
            estimate += int(result["distinct"].get("value") or 0)
            if result["top"].get("sum_other_doc_count"):
                row["approximate"] = True
            for bucket in result["top"].get("buckets", []):
                counts[bucket["key"]] = counts.get(bucket["key"], 0) + int(bucket["doc_count"])
        if slot.kind == "keyword":
            row["distinct_tokens"] = estimate if row["approximate"] else len(counts)
            row["largest_count"] = max(counts.values(), default=0)
            if row["documents"]:
                row["largest_share"] = round(row["largest_count"] / row["documents"], 4)
        rows.append(row)
    return rows


def risk(row: dict[str, Any]) -> str:
    """A plain-words reading of one row, for the table."""
    if row["distinct_tokens"] is None:
        return "text: reveals term counts and repeated terms only"
    if row["documents"] and row["distinct_tokens"] <= 20:
        return "HIGH: few distinct values; frequencies may reveal them"
    if row["largest_share"] is not None and row["largest_share"] >= 0.2:
        return "MEDIUM: one token is shared by a large part of the documents (a prefix or date part?)"
    return "low"
