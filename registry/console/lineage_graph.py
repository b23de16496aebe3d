"""A version's lineage as SVG coordinates: ancestors in columns to the left (one per depth),
the version in the middle, descendants to the right; one edge per lineage relation."""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.catalog.schemas import LineageEdgeRead

COLUMN_W, ROW_H, NODE_W, NODE_H, PAD = 310.0, 46.0, 210.0, 28.0, 12.0


@dataclass(frozen=True, slots=True)
class Node:
    ref: str
    kind: str
    x: float
    y: float
    focus: bool


@dataclass(frozen=True, slots=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    relation: str


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    node_w: float = NODE_W
    node_h: float = NODE_H


def graph(
    focus: str, ancestors: list[LineageEdgeRead], descendants: list[LineageEdgeRead]
) -> Graph:
    """``ancestors`` and ``descendants`` as the lineage API returns them (breadth first, each
    edge with its depth from ``focus``)."""
    column: dict[str, int] = {focus: 0}
    kinds: dict[str, str] = {focus: "adapter_version"}
    # A node reached at several depths sits at the deepest, so every edge points rightwards.
    for e in ancestors:
        if e.parent != focus:
            column[e.parent] = min(column.get(e.parent, 0), -e.depth)
        kinds.setdefault(e.parent, e.parent_kind)
    for e in descendants:
        if e.child != focus:
            column[e.child] = max(column.get(e.child, 0), e.depth)
        kinds.setdefault(e.child, e.child_kind)
    low = min(column.values())
    rows: dict[int, int] = {}
    where: dict[str, tuple[float, float]] = {}
    out = Graph()
    for ref, col in column.items():
        row = rows.get(col, 0)
        rows[col] = row + 1
        x, y = PAD + (col - low) * COLUMN_W, PAD + row * ROW_H
        where[ref] = (x, y)
        out.nodes.append(Node(ref, kinds[ref], x, y, ref == focus))
    for e in [*ancestors, *descendants]:
        if e.parent in where and e.child in where:
            (px, py), (cx, cy) = where[e.parent], where[e.child]
            out.edges.append(Edge(px + NODE_W, py + NODE_H / 2, cx, cy + NODE_H / 2, e.relation))
    out.width = PAD * 2 + (max(column.values()) - low) * COLUMN_W + NODE_W
    out.height = PAD * 2 + max(rows.values()) * ROW_H
    return out
