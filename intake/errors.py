"""The project's errors: one base class, and where each kind is defined.

Every error the project raises on purpose subclasses :class:`IntakeError` (defined in
``parsers/errors.py`` so that ``parsers`` and ``rules`` can subclass it without importing ``intake``).
The CLI is the one boundary that turns them into a one-line message and exit status 1.

- ``intake.config.ConfigError``: a bad configuration key;
- ``rules.packs.PackError``: a bad routine pack (names file and key);
- ``rules.forms.FormSchemaError``: a bad ``form.toml``;
- ``intake.tickets.TicketError``: a ticket action that is not allowed now;
- ``intake.store.NotFoundError``: no such ticket or message;
- ``intake.lock.AlreadyRunningError``, ``intake.sources.base.SourceError``: the machine, not the mail.
"""

from parsers.errors import IntakeError

__all__ = ["IntakeError"]
