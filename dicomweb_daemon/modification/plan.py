"""The request's paths arranged as a tree, so that one walk of a data set knows at each element
whether the request keeps it, replaces or removes it, or names something inside it.

A data set node maps tags to element nodes; an element node maps item indexes (EVERY for ``[*]``) to
the data set nodes of the items. Several nodes apply to one item when ``[*]`` and ``[n]`` both name it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .paths import EVERY, TagPath
from .request import Modification


@dataclass
class ElementNode:
    kept: bool = False
    replaced: bool = False
    removed: bool = False
    items: dict[int | None, DatasetNode] = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        return self.kept or self.replaced or self.removed

    @property
    def protects(self) -> bool:
        """A Keep or Replace inside: the element stays (it is walked, not removed or emptied)."""
        return any(node.protects for node in self.items.values())


@dataclass
class DatasetNode:
    elements: dict[int, ElementNode] = field(default_factory=dict)

    @property
    def protects(self) -> bool:
        return any(e.kept or e.replaced or e.protects for e in self.elements.values())


def build_plan(m: Modification) -> DatasetNode:
    """The tree of Keep, Replace and Remove paths of ``m``."""
    root = DatasetNode()
    for path, flag in ([(p, "kept") for p in m.keep] + [(r.path, "replaced") for r in m.replace]
                       + [(p, "removed") for p in m.remove]):
        setattr(_element(root, path), flag, True)
    return root


def _element(root: DatasetNode, path: TagPath) -> ElementNode:
    node = root
    for tag, index in path.parents:
        element = node.elements.setdefault(tag, ElementNode())
        node = element.items.setdefault(index, DatasetNode())
    return node.elements.setdefault(path.tag, ElementNode())


def element_nodes(nodes: list[DatasetNode], tag: int) -> list[ElementNode]:
    """The element nodes of ``tag`` in the data set nodes that apply to one data set."""
    return [node.elements[tag] for node in nodes if tag in node.elements]


def item_nodes(elements: list[ElementNode], index: int) -> list[DatasetNode]:
    """The data set nodes that apply to item ``index`` of a sequence."""
    found = []
    for element in elements:
        for key in (index, EVERY):
            if key in element.items:
                found.append(element.items[key])
    return found
