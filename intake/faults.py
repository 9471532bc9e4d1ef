"""Fault points for crash tests: kill this process at a named point of a poll.

Only active when the environment variable ``INTAKE_FAULT`` is set, e.g.
``INTAKE_FAULT=after-commit:3`` kills the process with SIGKILL the third time it reaches the
point ``after-commit``. The kill tests use it to prove that no point of a poll can lose or
double a mail; in production the variable is never set and each call is one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def point(name: str) -> None:
    spec = os.environ.get("INTAKE_FAULT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
