"""Declarative XML elements in the manner of virt-manager's ``virtinst.xmlbuilder``.

A subclass of :class:`XMLElement` wraps one lxml element. Its properties are declared once as
descriptors holding a path relative to that element (``"@type"``, ``"source/@file"``,
``"target/@dev"``, ``"name"`` for the text of ``<name>``). Reading a property parses, setting it
builds: missing elements on the way are created, direct children in ``CHILD_ORDER`` so the output
order does not depend on the order of assignments. lxml does all escaping.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

T = TypeVar("T")
E = TypeVar("E", bound="XMLElement")

_STEP = re.compile(r"\{[^}]*\}[^/]+|[^/]+")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


def _steps(path: str) -> tuple[list[str], str | None]:
    """``"a/b/@c"`` → (["a", "b"], "c"); ``"a/b"`` → (["a", "b"], None) meaning text of b."""
    parts = _STEP.findall(path)
    if parts and parts[-1].startswith("@"):
        return parts[:-1], parts[-1][1:]
    return parts, None


class XMLElement:
    """One libvirt XML element; see the module docstring."""

    XML_NAME: ClassVar[str]
    #: Tags of direct children in the order they are written.
    CHILD_ORDER: ClassVar[tuple[str, ...]] = ()
    NSMAP: ClassVar[dict[str, str] | None] = None

    def __init__(self, node: etree._Element | None = None) -> None:
        self.node: etree._Element = (
            node if node is not None else etree.Element(self.XML_NAME, nsmap=self.NSMAP)
        )

    @classmethod
    def from_xml(cls, text: str) -> Self:
        return cls(etree.fromstring(text.encode(), _PARSER))

    def to_xml(self) -> str:
        etree.indent(self.node, space="  ")
        return etree.tostring(self.node, encoding="unicode") + "\n"

    # -- tree helpers used by the properties -------------------------------------------------
    def _find(self, steps: list[str]) -> etree._Element | None:
        node: etree._Element | None = self.node
        for step in steps:
            if node is None:
                return None
            node = node.find(step)
        return node

    def _ensure(self, steps: list[str]) -> etree._Element:
        node = self.node
        for depth, step in enumerate(steps):
            child = node.find(step)
            if child is None:
                child = etree.Element(step)
                if depth == 0:
                    self._insert_ordered(child)
                else:
                    node.append(child)
            node = child
        return node

    def _insert_ordered(self, child: etree._Element) -> None:
        """Insert a direct child before the first sibling that ``CHILD_ORDER`` puts after it."""
        order = self.CHILD_ORDER
        tag = child.tag
        if tag in order:
            rank = order.index(tag)
            for index, sibling in enumerate(self.node):
                if sibling.tag in order and order.index(sibling.tag) > rank:
                    self.node.insert(index, child)
                    return
        self.node.append(child)

    def _prune(self, steps: list[str]) -> None:
        """Remove elements of ``steps`` that are left empty, deepest first."""
        for depth in range(len(steps), 0, -1):
            node = self._find(steps[:depth])
            if node is None or len(node) or node.attrib or (node.text or "").strip():
                return
            parent = node.getparent()
            if parent is not None:
                parent.remove(node)

    # -- children ----------------------------------------------------------------------------
    def children(self, cls: type[E]) -> list[E]:
        return [cls(node) for node in self.node.findall(cls.XML_NAME)]

    def add_child(self, child: E) -> E:
        self._insert_ordered(child.node)
        return child

    def remove_child(self, child: XMLElement) -> None:
        self.node.remove(child.node)


class _Property(Generic[T]):
    """Base descriptor: converts between text in the tree and a Python value."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.steps, self.attr = _steps(path)

    def to_value(self, text: str) -> T:
        raise NotImplementedError

    def to_text(self, value: T) -> str:
        return str(value)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: XMLElement, owner: type[Any]) -> T | None: ...
    def __get__(self, obj: XMLElement | None, owner: type[Any]) -> Self | T | None:
        if obj is None:
            return self
        node = obj._find(self.steps)
        if node is None:
            return None
        text = node.get(self.attr) if self.attr else node.text
        return None if text is None else self.to_value(text)

    def __set__(self, obj: XMLElement, value: T | None) -> None:
        if value is None:
            node = obj._find(self.steps)
            if node is not None:
                if self.attr:
                    if self.attr in node.attrib:
                        del node.attrib[self.attr]
                else:
                    node.text = None
            obj._prune(self.steps)
            return
        node = obj._ensure(self.steps)
        if self.attr:
            node.set(self.attr, self.to_text(value))
        else:
            node.text = self.to_text(value)


class XMLProperty(_Property[str]):
    """A string attribute or element text."""

    def to_value(self, text: str) -> str:
        return text


class XMLIntProperty(_Property[int]):
    def to_value(self, text: str) -> int:
        return int(text)


class XMLYesNoProperty(_Property[bool]):
    """A boolean written as two words (``yes``/``no`` unless told otherwise)."""

    def __init__(self, path: str, true: str = "yes", false: str = "no") -> None:
        super().__init__(path)
        self.true, self.false = true, false

    def to_value(self, text: str) -> bool:
        return text == self.true

    def to_text(self, value: bool) -> str:
        return self.true if value else self.false


class XMLPresenceProperty:
    """A flag that is true when an (empty) element exists, e.g. ``<features><acpi/>``."""

    def __init__(self, path: str) -> None:
        self.steps, _ = _steps(path)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: XMLElement, owner: type[Any]) -> bool: ...
    def __get__(self, obj: XMLElement | None, owner: type[Any]) -> Self | bool:
        if obj is None:
            return self
        return obj._find(self.steps) is not None

    def __set__(self, obj: XMLElement, value: bool) -> None:
        node = obj._find(self.steps)
        if value and node is None:
            obj._ensure(self.steps)
        elif not value and node is not None:
            parent = node.getparent()
            if parent is not None:
                parent.remove(node)
