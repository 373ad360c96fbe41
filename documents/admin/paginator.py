"""A change-list paginator that does not count a huge table on every page view.

``SELECT COUNT(*)`` on PostgreSQL reads every visible row (MVCC keeps no row count), so on a
table of millions of documents each page view would pay a full scan. Instead:

* unfiltered queryset (a superuser's plain list): the planner's estimate, ``pg_class.reltuples``,
  which autovacuum/ANALYZE keep current. Off by a few percent at most; the last page may be
  short or empty, which the admin shows without an error. Below ``EXACT_BELOW`` rows, or
  before the table was ever analysed (reltuples = -1), the exact count is cheap and used.
* filtered queryset (a search, a filter, a tenant member's scoped list): the count is capped
  at ``COUNT_CAP`` rows with ``COUNT(*)`` over a ``LIMIT`` subquery, so it stops early. Pages
  past the cap are not linked; narrowing the filter or sorting reaches those rows.
* any other database (SQLite, the embedded default): the exact count.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

EXACT_BELOW = 10_000
COUNT_CAP = 50_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return len(queryset)
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        if not query.where and not query.distinct and not query.combinator:
            estimate = self._planner_estimate(connection, query.get_meta().db_table)
            if estimate >= EXACT_BELOW:
                return estimate
            return queryset.count()
        # COUNT(*) FROM (SELECT ... LIMIT cap): PostgreSQL stops reading at the cap.
        return queryset.order_by()[:COUNT_CAP].count()

    @staticmethod
    def _planner_estimate(connection, table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table]
            )
            row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else -1
