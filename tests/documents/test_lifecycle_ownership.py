"""Only documents/lifecycle.py writes a document's status and claim fields.

Read from the source: any UPDATE, create, save(update_fields=...) or attribute assignment
that names one of ``lifecycle.LIFECYCLE_FIELDS`` anywhere else in the app fails this test,
and so does a claim's ``write(...)`` naming one that only the lifecycle's moves may set, so a
new shortcut around the lifecycle cannot land unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from documents.lifecycle import CLAIM_WRITE_REFUSES, LIFECYCLE_FIELDS

APP = Path(__file__).resolve().parents[2] / "documents"
OWNER = APP / "lifecycle.py"
_WRITE_CALLS = {"update", "create", "get_or_create", "update_or_create", "bulk_update", "save"}


def _names_in(node) -> set[str]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return {e.value for e in node.elts if isinstance(e, ast.Constant)}
    return set()


def lifecycle_writes(source: str) -> list[tuple[int, str]]:
    """(line, field) for every write of a lifecycle field in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "write":  # Claim.write: progress only, checked at run time too
                found += [
                    (node.lineno, k.arg) for k in node.keywords if k.arg in CLAIM_WRITE_REFUSES
                ]
                continue
            if node.func.attr not in _WRITE_CALLS:
                continue
            for keyword in node.keywords:
                if keyword.arg in LIFECYCLE_FIELDS:
                    found.append((node.lineno, keyword.arg))
                elif keyword.arg in ("update_fields", "fields"):
                    found += [(node.lineno, f) for f in _names_in(keyword.value) & LIFECYCLE_FIELDS]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in LIFECYCLE_FIELDS:
                    found.append((node.lineno, target.attr))
    return found


def app_modules() -> list[Path]:
    return sorted(
        path for path in APP.rglob("*.py") if path != OWNER and "migrations" not in path.parts
    )


@pytest.mark.parametrize("path", app_modules(), ids=lambda p: str(p.relative_to(APP)))
def test_no_module_but_the_lifecycle_writes_status_or_claim_fields(path):
    assert lifecycle_writes(path.read_text()) == []


def test_the_check_catches_each_kind_of_write():
    source = """
Document.objects.filter(pk=1).update(status="failed")
Document.objects.create(claimed_by="me")
document.save(update_fields=["heartbeat_at", "title"])
document.stage = "queued"
held.write(stage="embedding", status="completed", chunk_count=3)
"""
    assert sorted(lifecycle_writes(source)) == [
        (2, "status"),
        (3, "claimed_by"),
        (4, "heartbeat_at"),
        (5, "stage"),
        (6, "status"),
    ]
