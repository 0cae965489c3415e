"""Channel-agnostic conversation flows, their message catalogue and neutral types.

The engine calls ``respond`` once per inbound message; text channels draw replies with
``as_plain_text``; ``text`` looks a sentence up in the catalogue.
"""

from flows.catalogue import text
from flows.render import as_plain_text
from flows.router import needs_requests, respond
from flows.status import references_asked
from flows.text import fold_arabic, normalize_digits
from flows.validation import mask_national_id

__all__ = [
    "as_plain_text",
    "fold_arabic",
    "mask_national_id",
    "needs_requests",
    "normalize_digits",
    "references_asked",
    "respond",
    "text",
]
