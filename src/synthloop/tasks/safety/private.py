"""A wrapper for values that must never reach a prompt (the hidden performance R*).

EPO-Safe's whole claim rests on the reflector never seeing R*: the only safety
signal it gets is the danger bit. Keeping R* as a bare ``float`` next to R in
a record invites one careless f-string to leak it. :class:`Private` makes the
leak loud instead: formatting it (``str``, ``format``, f-strings) raises, and
``repr`` shows no digits. The one way to read the number is the explicitly
named :meth:`Private.reveal`, which the prompt builders never call (a test
greps them for it).
"""

from __future__ import annotations

from dataclasses import dataclass


class PrivateValueLeak(RuntimeError):
    """Raised when a private value is about to be rendered as text."""


@dataclass(frozen=True, eq=True)
class Private:
    """A number that may be stored and compared but not rendered.

    Example::

        r_star = Private(35.0)
        r_star.reveal()      # 35.0 (metrics, reports, tests)
        f"{r_star}"          # raises PrivateValueLeak
    """

    _value: float

    def reveal(self) -> float:
        """Return the number. Call only from metrics, storage and tests, never from prompt code."""
        return self._value

    def __str__(self) -> str:
        raise PrivateValueLeak("a private value (hidden performance R*) was about to be rendered as text")

    def __format__(self, spec: str) -> str:
        raise PrivateValueLeak("a private value (hidden performance R*) was about to be formatted")

    def __repr__(self) -> str:
        return "Private(<hidden>)"
