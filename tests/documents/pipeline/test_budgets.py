"""The sentences' numbers, the text budget and the deadline."""

import pytest

from documents.errors import BudgetExceeded, FailureKind, PermanentError
from documents.pipeline.budgets import Deadline, TextBudget, size


@pytest.mark.parametrize(
    ("n", "text"),
    [(512, "512 bytes"), (4_096, "4.1 KB"), (64_000_000, "64 MB"), (1_099_939_620, "1.1 GB")],
)
def test_sizes_read_as_people_read_them(n, text):
    assert size(n) == text


def test_the_text_budget_fails_only_past_its_limit():
    budget = TextBudget(10)
    budget.add(10)
    with pytest.raises(BudgetExceeded) as caught:
        budget.add(1, page=3, pages=9)
    assert caught.value.kind == FailureKind.TOO_MUCH_TEXT
    assert "(11 read by page 3 of 9)" in str(caught.value)


def test_the_deadline_measures_from_its_start_with_the_clock_given():
    now = [100.0]
    deadline = Deadline(30, clock=lambda: now[0])
    now[0] = 129.0
    deadline.check(page=4, pages=10)
    assert deadline.remaining() == pytest.approx(1.0)
    now[0] = 131.0
    with pytest.raises(BudgetExceeded) as caught:
        deadline.check(page=5, pages=10)
    assert caught.value.kind == FailureKind.TIME_LIMIT
    assert str(caught.value) == (
        "Reading this document took longer than the limit of 30 seconds (stopped after 31 "
        "seconds, at page 5 of 10). Split it into smaller files and upload them separately."
    )


def test_a_budget_failure_is_permanent_and_survives_being_rebuilt_from_its_args():
    # Celery's JSON result serialisation rebuilds an exception as cls(*args).
    error = TextBudget(1).add
    with pytest.raises(BudgetExceeded) as caught:
        error(2)
    rebuilt = type(caught.value)(*caught.value.args)
    assert isinstance(rebuilt, PermanentError)
    assert (rebuilt.kind, str(rebuilt)) == (caught.value.kind, str(caught.value))
    assert caught.value.kind in FailureKind.BUDGETS
