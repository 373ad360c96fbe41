"""pdfplumber's table finder with its cell search done without its quadratic scans.

``pdfplumber.table.intersections_to_cells`` looks, for each intersection of ruling lines,
for the smallest cell it is the top-left corner of. For every point it scans all the later
points to find those directly below and directly right of it, and it compares the edges of
two points by building sets of their boxes again on every comparison. On a page of a
standard's tables (a few hundred intersections) that was most of the finder's time, and of
the text strategy's on a page of aligned columns (docs/quality-and-tables.md).
``cells_from_intersections`` returns the same cells in the same order: the points below and
to the right come from the points grouped by column and by row, already in the order the
scan met them, and each point's edge boxes are built once. The rest of the finder (edges,
intersections, tables) is pdfplumber's own; tests hold the two searches equal on random
grids and on the corpus' table pages.
"""

from __future__ import annotations

from collections import defaultdict

from pdfplumber.table import (
    Table,
    TableFinder,
    TableSettings,
    cells_to_tables,
    edges_to_intersections,
)
from pdfplumber.utils import obj_to_bbox

_Point = tuple[float, float]
_Box = tuple[float, float, float, float]


class FastTableFinder(TableFinder):
    """``TableFinder`` finding its cells with ``cells_from_intersections``; ``page`` needs
    only what the strategies in ``settings`` read of it (``edges`` or ``extract_words``,
    and ``bbox``)."""

    def __init__(self, page, settings: dict | None = None) -> None:
        # pdfplumber's own __init__ (the pinned release) with the cell search swapped: it
        # calls a module function, not a method, so there is nothing smaller to override.
        self.page = page
        self.settings = TableSettings.resolve(settings)
        self.edges = self.get_edges()
        self.intersections = edges_to_intersections(
            self.edges,
            self.settings.intersection_x_tolerance,
            self.settings.intersection_y_tolerance,
        )
        self.cells = cells_from_intersections(self.intersections)
        self.tables = [Table(self.page, group) for group in cells_to_tables(self.cells)]


def cells_from_intersections(intersections: dict[_Point, dict]) -> list[_Box]:
    """What ``pdfplumber.table.intersections_to_cells`` returns for ``intersections``."""
    vertical = {p: {obj_to_bbox(e) for e in edges["v"]} for p, edges in intersections.items()}
    horizontal = {p: {obj_to_bbox(e) for e in edges["h"]} for p, edges in intersections.items()}
    points = sorted(intersections)
    # Later points in sorted order that share a point's x are below it, nearest first;
    # those that share its y are right of it, nearest first.
    column: dict[float, list[_Point]] = defaultdict(list)
    row: dict[float, list[_Point]] = defaultdict(list)
    for point in points:
        column[point[0]].append(point)
        row[point[1]].append(point)
    place_in_column = {p: i for pts in column.values() for i, p in enumerate(pts)}
    place_in_row = {p: i for pts in row.values() for i, p in enumerate(pts)}

    def same_vertical(a: _Point, b: _Point) -> bool:
        return not vertical[a].isdisjoint(vertical[b])

    def same_horizontal(a: _Point, b: _Point) -> bool:
        return not horizontal[a].isdisjoint(horizontal[b])

    def smallest_cell(point: _Point) -> _Box | None:
        below = column[point[0]][place_in_column[point] + 1 :]
        right = row[point[1]][place_in_row[point] + 1 :]
        for below_point in below:
            if not same_vertical(point, below_point):
                continue
            for right_point in right:
                if not same_horizontal(point, right_point):
                    continue
                corner = (right_point[0], below_point[1])
                if (
                    corner in intersections
                    and same_vertical(corner, right_point)
                    and same_horizontal(corner, below_point)
                ):
                    return (point[0], point[1], corner[0], corner[1])
        return None

    return [cell for cell in map(smallest_cell, points[:-1]) if cell is not None]
