"""The channels there are: every module of ``handlers`` that declares itself with a ``SPEC``."""

from __future__ import annotations

import functools
import importlib
import pkgutil

import handlers
from handlers.base import Capabilities, ChannelSpec

# A name no module declares (a channel since removed) can carry nothing special.
UNKNOWN = Capabilities()


@functools.cache
def specs() -> tuple[ChannelSpec, ...]:
    """Each channel module's declaration, in the order of the modules' names."""
    found = []
    for module in sorted(pkgutil.iter_modules(handlers.__path__), key=lambda m: m.name):
        spec = getattr(importlib.import_module(f"handlers.{module.name}"), "SPEC", None)
        if isinstance(spec, ChannelSpec):
            found.append(spec)
    return tuple(found)


def channel_names() -> tuple[str, ...]:
    """Every channel name any module serves (the persisted ones)."""
    return tuple(name for spec in specs() for name in spec.names)


def capabilities_of(name: str) -> Capabilities:
    """What a channel can carry before configuration (no templates, no rates)."""
    for spec in specs():
        if name in spec.capabilities:
            return spec.capabilities[name]
    return UNKNOWN
