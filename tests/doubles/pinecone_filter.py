"""Pinecone's metadata filter language, as the double evaluates it (docs/doubles.md;
https://docs.pinecone.io/guides/search/filter-by-metadata)."""

from __future__ import annotations

from collections.abc import Mapping

_COMPARE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def matches_filter(md: Mapping, flt: Mapping) -> bool:
    """Pinecone's Mongo-like filter: top-level keys are AND-ed, a bare value means $eq, and a
    list-of-strings field matches $eq/$in when any of its elements does."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches_filter(md, c) for c in cond):
                return False
            continue
        if key == "$or":
            if not any(matches_filter(md, c) for c in cond):
                return False
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        present = key in md
        value = md.get(key)
        values = value if isinstance(value, list) else [value]
        for op, arg in ops.items():
            if op == "$exists":
                ok = present == bool(arg)
            elif op == "$eq":
                ok = present and arg in values
            elif op == "$ne":
                ok = not present or arg not in values
            elif op == "$in":
                ok = present and any(v in arg for v in values)
            elif op == "$nin":
                ok = not present or not any(v in arg for v in values)
            elif op in _COMPARE:
                ok = present and isinstance(value, int | float) and _COMPARE[op](value, arg)
            else:
                raise ValueError(f"unsupported filter operator {op}")
            if not ok:
                return False
    return True
