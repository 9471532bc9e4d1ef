"""The project's one error base class.

It lives in ``parsers/`` only because that is the bottom of the import order (``parsers`` <- ``rules``
<- ``intake``): every layer can subclass it without importing upwards. ``intake.errors`` re-exports it
under the name the rest of the code uses. An :class:`IntakeError` is a refusal the user can act on
(a bad pack, a bad config key, an unknown ticket); its message is one line, names the file or key
at fault, and never holds a personal value. The CLI turns it into that line and exit status 1.
"""

from __future__ import annotations


class IntakeError(Exception):
    """A refusal with a one-line message for the person running the bot (never a personal value)."""
