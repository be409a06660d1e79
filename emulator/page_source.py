"""UiAutomator2 page source (the ``<hierarchy>`` XML a device dumps) read into element dicts.

Shared by the live Android env (``guienv.envs.android``) and the online task predicates
(``tasks.android_tasks``), so it lives below both. Attribute names follow UiAutomator2's
``page source`` format (appium/appium-uiautomator2-server, ``AccessibilityNodeInfoDumper``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from guienv.errors import DataError

__all__ = ["hierarchy_size", "load_page_source", "parse_bounds", "parse_page_source"]

_BOUNDS = re.compile(r"^\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]$")
_EDIT_CLASSES = ("EditText", "AutoCompleteTextView", "SearchView$SearchAutoComplete")


def parse_bounds(value: str) -> tuple[int, int, int, int]:
    """``"[l,t][r,b]"`` -> ``(l, t, r, b)``; ``ValueError`` otherwise."""
    m = _BOUNDS.match(value or "")
    if not m:
        raise ValueError(f"bounds must look like [l,t][r,b], got {value!r}")
    left, top, right, bottom = (int(v) for v in m.groups())
    if right < left or bottom < top:
        raise ValueError(f"bounds {value!r} has right < left or bottom < top")
    return left, top, right, bottom


def _flag(node: ET.Element, name: str) -> bool:
    return node.get(name, "false") == "true"


def parse_page_source(xml_text: str, where: str = "<page source>") -> list[dict[str, Any]]:
    """Elements of a UiAutomator2 page source (``<hierarchy>`` XML), boxes in device pixels.

    Every node with a non-empty ``bounds`` box becomes an element dict with the
    :class:`guienv.types.UIElement` fields plus ``package``, ``enabled``, ``focused``, ``index``
    (document order). Raises :class:`DataError` naming the node and field on malformed input.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DataError(where, f"page source is not well-formed XML ({exc})") from exc
    out: list[dict[str, Any]] = []
    for i, node in enumerate(root.iter()):
        if node is root and node.tag == "hierarchy":
            continue
        if "bounds" not in node.attrib:
            continue
        try:
            box = parse_bounds(node.get("bounds"))
        except ValueError as exc:
            raise DataError(where, str(exc), record=f"node {i} <{node.tag}>", field="bounds") from None
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        cls = node.get("class") or node.tag
        out.append(
            {
                "box": [float(v) for v in box],
                "text": node.get("text") or None,
                "content_description": node.get("content-desc") or None,
                "resource_id": node.get("resource-id") or None,
                "class_name": cls,
                "clickable": _flag(node, "clickable") or _flag(node, "long-clickable"),
                "editable": cls.endswith(_EDIT_CLASSES) or _flag(node, "editable"),
                "scrollable": _flag(node, "scrollable"),
                "checkable": _flag(node, "checkable"),
                "checked": _flag(node, "checked"),
                "visible": node.get("displayed", "true") == "true",
                "package": node.get("package") or None,
                "enabled": node.get("enabled", "true") == "true",
                "focused": _flag(node, "focused"),
                "index": i,
            }
        )
    return out


def load_page_source(path: str | Path) -> list[dict[str, Any]]:
    """:func:`parse_page_source` of a saved page-source file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(p, f"cannot read page source ({exc})") from exc
    return parse_page_source(text, where=str(p))


def hierarchy_size(xml_text: str) -> tuple[int, int] | None:
    """``(width, height)`` attributes of the ``<hierarchy>`` root (device pixels), if present."""
    try:
        root = ET.fromstring(xml_text)
        return int(root.get("width")), int(root.get("height"))
    except (ET.ParseError, TypeError, ValueError):
        return None


