"""Every flow a beneficiary can be in, by its declaration: the router and the menu read this.

Adding a flow is writing its module (its ``DECLARATION``: name, steps, menu entry, what
it expects), its catalogue texts and its tests, and adding the declaration here. Menu
numbers are stable: a new entry takes the next number, none is renumbered or reused
(people learn them, and a WhatsApp template may quote one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from flows import (
    appointments,
    feedback,
    handoff,
    inquiry,
    intake,
    my_data,
    needs_info,
    rating,
    status,
)
from flows.steps import FlowDeclaration, MenuEntry

DECLARED: Final[tuple[FlowDeclaration, ...]] = (
    intake.DECLARATION,
    status.DECLARATION,
    rating.DECLARATION,
    handoff.DECLARATION,
    needs_info.DECLARATION,
    inquiry.DECLARATION,
    feedback.DECLARATION,
    appointments.DECLARATION,
    my_data.DECLARATION,
)


def menu_entries(declarations: Iterable[FlowDeclaration]) -> tuple[MenuEntry, ...]:
    """The menu's entries in number order; the numbers must run 1, 2, 3… with no gap
    (a beneficiary's number picks the entry at that position)."""
    entries = sorted((d.entry for d in declarations if d.entry), key=lambda e: e.number)
    numbers = [entry.number for entry in entries]
    if numbers != list(range(1, len(entries) + 1)):
        raise ValueError(f"menu numbers must run 1, 2, 3… without gaps, not {numbers}")
    return tuple(entries)


def by_name(declarations: Iterable[FlowDeclaration]) -> Mapping[str, FlowDeclaration]:
    """The declarations by flow name, refusing two flows of one name."""
    found: dict[str, FlowDeclaration] = {}
    for declaration in declarations:
        if declaration.name in found:
            raise ValueError(f"two flows are named {declaration.name!r}")
        found[declaration.name] = declaration
    return found


ENTRIES: Final = menu_entries(DECLARED)
