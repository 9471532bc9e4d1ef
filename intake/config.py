"""Configuration: one TOML file, every key known and checked, secrets also from the environment.

A missing or bad key is a :class:`ConfigError` whose message is one line naming the key, so the
CLI can print it instead of a traceback. Every key is documented in the README; a test fails
when one is not.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Literal

from parsers.errors import IntakeError


class ConfigError(IntakeError, ValueError):
    """The configuration file is missing, unreadable or has a bad key."""


# -- checks shared by the IMAP and SMTP settings ------------------------------------------------

TlsMode = Literal["ssl", "starttls", "none"]
TLS_MODES = ("ssl", "starttls", "none")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine by name or address (no DNS lookup: decided before connecting)."""
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport(section: str, host: str, tls: str, allow_plaintext: bool) -> None:
    """Refuse an unknown TLS mode, and plain text to another machine unless explicitly allowed.

    Shared by the IMAP and SMTP settings; ``section`` names the config section in the error.
    """
    if tls not in TLS_MODES:
        raise ConfigError(f"{section}.tls: must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    if tls == "none" and not allow_plaintext and not is_loopback(host):
        raise ConfigError(
            f'{section}.allow_plaintext: {section}.tls = "none" would send the password in plain text '
            f'to {host}; use tls = "ssl" or "starttls", or set {section}.allow_plaintext = true'
        )


def password_from(section: str, data: Mapping[str, Any], env: Mapping[str, str], default_env: str) -> str:
    """The password from ``data["password"]``, else from the environment variable ``password_env`` names."""
    if data.get("password"):
        return str(data["password"])
    env_name = data.get("password_env") or default_env
    if env.get(env_name):
        return env[env_name]
    raise ConfigError(f"{section}.password: missing (set it, or the environment variable {env_name})")


def typed(section: str, data: Mapping[str, Any], key: str, kind: type, default: Any = ...) -> Any:
    """``data[key]`` type-checked as intake.config does; a missing key without a default fails."""
    if key not in data or data[key] in ("", None):
        if default is ...:
            raise ConfigError(f"{section}.{key}: missing")
        return default
    return _check_type(f"{section}.{key}", data[key], kind)


# key -> (type, default). A default of REQUIRED means the key must be given.
REQUIRED = object()

#: The schema: section -> key -> (type, default). Sub-tables are sections with dotted names.
SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "store": {
        "path": (str, "var/intake.db"),
        "busy_timeout_seconds": ((int, float), 30),  # how long a write waits for another writer's lock
    },
    "mailbox": {
        "kind": (str, "local"),  # "local" (Maildir or folder of .eml files) or "imap"
        "path": (str, "var/mailbox"),  # local only
        "host": (str, ""),
        "port": (int, 993),
        "username": (str, ""),
        "password": (str, ""),
        "password_env": (str, "INTAKE_IMAP_PASSWORD"),
        "tls": (str, "ssl"),
        "allow_plaintext": (bool, False),
        "ca_file": (str, ""),  # PEM CA file trusted instead of the system store; relative to the config file
        "folder": (str, "INBOX"),
        "batch_size": (int, 100),
        "timeout": ((int, float), 30),
        "max_message_bytes": (int, 25 * 1024 * 1024),
        # The routine that answers mail whose subject fits no routine; required when more than one
        # routine is enabled, else the only one.
        "default_routine": (str, ""),
    },
    "mailbox.folders": {
        "accepted": (str, "Intake/Accepted"),
        "rejected": (str, "Intake/Rejected"),
        "ignored": (str, "Intake/Ignored"),
        "held": (str, "Intake/Held"),
        "personal_data": (str, "Intake/PersonalData"),
        "personal_data_action": (str, "move"),  # "move" to the folder above, or "delete"
    },
    "routines": {
        "enabled": (list, ["mittvaccin"]),
        "extra_dirs": (list, []),
    },
    "replies": {
        "from_address": (str, "support@example.test"),
        "from_name": (str, ""),
        "own_addresses": (list, []),
        "max_age_days": ((int, float), 7),
        "rate_limit_per_hour": (int, 5),
    },
    "senders": {
        "allowed_domains": (list, []),
        "trusted_domains": (list, []),
    },
    "outbox": {
        "kind": (str, "file"),  # "file" (write .eml files to dir) or "smtp"
        "dir": (str, "var/outbox"),
        "interval_seconds": (int, 30),
        "max_attempts": (int, 10),
    },
    "smtp": {
        "host": (str, ""),
        "port": (int, 587),
        "username": (str, ""),
        "password": (str, ""),
        "password_env": (str, "INTAKE_SMTP_PASSWORD"),
        "tls": (str, "starttls"),
        "allow_plaintext": (bool, False),
        "ca_file": (str, ""),  # PEM CA file trusted instead of the system store; relative to the config file
        "timeout": ((int, float), 30),
    },
    "poll": {
        "interval_seconds": (int, 60),
        "lock_path": (str, ""),  # default: the database path + ".lock"
        "max_attempts": (int, 3),  # failed tries at one mail before it is parked
        "workers": (int, 0),  # processes deciding a batch in parallel; 0: one per core, at most 4
    },
    "personal_data": {
        "reject_threshold": (float, 0.8),
        "hold_threshold": (float, 0.5),
        "person_hsa_suffixes": (list, ["P\\w+"]),
        "detect_names": (bool, True),
        "max_findings": (int, 20),
        "max_scan_chars": (int, 2_000_000),
        "early_stop_chars": (int, 200_000),
    },
    "logging": {
        "level": (str, "INFO"),
    },
    "web": {
        "host": (str, "127.0.0.1"),
        "port": (int, 8080),
        "secret_key": (str, ""),
        "secret_key_env": (str, "INTAKE_WEB_SECRET"),
        "secure_cookies": (bool, False),  # set when served behind TLS
        "trusted_proxy_header": (str, ""),  # e.g. "X-Remote-User"; empty: no SSO header
        "trusted_proxies": (list, []),  # addresses the SSO header is honoured from
        "session_hours": ((int, float), 8),
    },
    "retention": {
        "days": (int, 90),
    },
    "register": {  # the access register (README: "The access register")
        "enabled": (bool, True),
        "key_file": (str, "var/register.key"),  # relative to the config file; keep it out of database backups
        "retention_days": (int, 365),  # ended entries are deleted this long after they ended
    },
    "approvals": {  # approval by an attestant (README: "Approval by an attestant")
        # A mail answer also needs a passing DMARC (or aligned DKIM) result from authserv_id; else it is held.
        "require_authenticated": (bool, False),
        "authserv_id": (str, ""),  # the authserv-id of the Authentication-Results header our own MTA adds
        "link_base_url": (str, ""),  # e.g. "https://intake.region.example"; empty: the mail offers no link
        "token_days": (int, 30),  # how long an approval token works (the pack's expiry timer usually ends it first)
    },
}

_CHOICES = {
    ("mailbox", "kind"): ("local", "imap"),
    ("mailbox", "tls"): ("ssl", "starttls", "none"),
    ("mailbox.folders", "personal_data_action"): ("move", "delete"),
    ("outbox", "kind"): ("file", "smtp"),
    ("smtp", "tls"): ("ssl", "starttls", "none"),
    ("logging", "level"): ("DEBUG", "INFO", "WARNING", "ERROR"),
}

# -- several mailboxes, IDLE and per-mailbox identity (README: "Several mailboxes and IDLE") ----------------
#: Keys every mailbox has besides the connection: ``[mailbox]`` and each ``[[mailboxes]]`` entry.
MAILBOX_KEYS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "name": (str, ""),  # the desk's id (status, handler limits); default "default" for [mailbox]
    "idle": (bool, True),  # wait in IMAP IDLE when the server offers it; polling stays the fallback
    "idle_refresh_seconds": ((int, float), 600),  # re-issue IDLE this often (RFC 2177: within 29 minutes)
    "backoff_max_seconds": ((int, float), 300),  # longest wait between tries of an unreachable mailbox
    "auth_backoff_seconds": ((int, float), 300),  # first wait after a refused login (doubles, up to the next)
    "auth_backoff_max_seconds": ((int, float), 3600),
    "routines": (list, []),  # routine ids this mailbox serves; empty: every enabled routine
    "default_routine": (str, ""),  # the routine that answers mail matching none; empty: the first served
    "from_address": (str, ""),  # the From of its replies; empty: replies.from_address
    "from_name": (str, ""),  # empty: replies.from_name
    "desk_name": (str, ""),  # the desk's name in reply signatures; empty: the routine pack's desk_name
}
SCHEMA["mailbox"].update(MAILBOX_KEYS)


# -- typed sections: ``config.mailbox.default_routine`` as well as ``config["mailbox"]["default_routine"]`` --


def _section_type(name: str) -> type:
    """A frozen dataclass for one section, made from :data:`SCHEMA` so the two never drift apart."""
    fields_ = []
    for key, (kind, _default) in SCHEMA[name].items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        fields_.append((key, tuple if list in kinds else kinds[0]))
    for sub in SCHEMA:
        if sub.startswith(name + "."):
            fields_.append((sub.split(".", 1)[1], Any))
    cls_name = "".join(part.title() for part in name.replace(".", "_").split("_")) + "Section"
    return make_dataclass(cls_name, fields_, frozen=True)


#: Section name -> its typed class (``mailbox.folders`` is reached as ``config.mailbox.folders``).
SECTION_TYPES: dict[str, type] = {name: _section_type(name) for name in SCHEMA}


def _typed_section(name: str, sections: dict[str, dict[str, Any]]) -> Any:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in sections[name].items()}
    for sub in SECTION_TYPES:
        if sub.startswith(name + ".") and sub in sections:
            values[sub.split(".", 1)[1]] = _typed_section(sub, sections)
    return SECTION_TYPES[name](**values)


@dataclass(frozen=True)
class Config:
    """The whole configuration, checked once, up front.

    Read it typed (``config.mailbox.default_routine``, ``config.mailbox.folders.held``) or, as older
    code does, by section (``config["mailbox"]["default_routine"]``): both see the same values.
    """

    sections: dict[str, dict[str, Any]]
    base_dir: Path = field(default_factory=Path.cwd)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: Every configured mailbox: the ``[[mailboxes]]`` entries, or ``[mailbox]`` as the only one.
    mailbox_list: tuple[MailboxConfig, ...] = ()
    # One typed attribute per top-level section of SCHEMA (``config.mailbox``, ``config.register``, ...),
    # set in __post_init__.

    def __post_init__(self) -> None:
        for name in SECTION_TYPES:
            if "." not in name:
                object.__setattr__(self, name, _typed_section(name, self.sections))

    def __getattr__(self, name: str) -> Any:  # only reached before __post_init__ or for a typo
        raise AttributeError(f"configuration has no section {name!r}")

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def path(self, section: str, key: str) -> Path:
        """A path-valued key, relative to the config file's folder."""
        value = Path(self.sections[section][key]).expanduser()
        return value if value.is_absolute() else self.base_dir / value

    def secret(self, section: str) -> str:
        """The password of ``section``: from the file, else from the environment variable it names."""
        data = self.sections[section]
        return data["password"] or self.env.get(data["password_env"], "")

    @property
    def mailboxes(self) -> tuple[MailboxConfig, ...]:
        return self.mailbox_list or (MailboxConfig.single(self.sections),)

    def mailbox_path(self, mailbox: MailboxConfig, key: str) -> Path:
        """A path-valued key of one mailbox (``path``, ``ca_file``), relative to the config file's folder."""
        value = Path(mailbox.settings[key]).expanduser()
        return value if value.is_absolute() else self.base_dir / value

    @property
    def db_path(self) -> Path:
        return self.path("store", "path")

    @property
    def lock_path(self) -> Path:
        if self.sections["poll"]["lock_path"]:
            return self.path("poll", "lock_path")
        return self.db_path.with_name(self.db_path.name + ".lock")


def _check_type(name: str, value: Any, expected: type | tuple[type, ...]) -> Any:
    types = expected if isinstance(expected, tuple) else (expected,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if types == (float,) else value
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"{name}: expected {types[0].__name__}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(f"{name}: expected {types[0].__name__}, got {type(value).__name__}")
    return value


def _flatten(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"mailbox": {"folders": {...}}}`` into ``{"mailbox": {...}, "mailbox.folders": {...}}``."""
    sections: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name not in SCHEMA or not isinstance(value, dict):
            raise ConfigError(f"{name}: unknown section")
        own: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, dict):
                if f"{name}.{key}" not in SCHEMA:
                    raise ConfigError(f"{name}.{key}: unknown section")
                sections[f"{name}.{key}"] = item
            else:
                own[key] = item
        sections[name] = own
    return sections


def from_mapping(
    data: Mapping[str, Any], *, base_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Check ``data`` against :data:`SCHEMA` and fill defaults; raises :class:`ConfigError`."""
    data, listed = _split_mailboxes(data)
    given = _flatten(data)
    sections: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        values = dict(given.get(section, {}))
        out: dict[str, Any] = {}
        for key, (expected, default) in keys.items():
            name = f"{section}.{key}"
            if key in values:
                out[key] = _check_type(name, values.pop(key), expected)
            elif default is REQUIRED:
                raise ConfigError(f"{name}: missing")
            else:
                out[key] = list(default) if isinstance(default, list) else default
            choices = _CHOICES.get((section, key))
            if choices and out[key] not in choices:
                raise ConfigError(f"{name}: must be one of {', '.join(choices)}, not {out[key]!r}")
        if values:
            raise ConfigError(f"{section}.{sorted(values)[0]}: unknown key")
        sections[section] = out
    mailbox = sections["mailbox"]
    if mailbox["kind"] == "imap":
        for key in ("host", "username"):
            if not mailbox[key]:
                raise ConfigError(f"mailbox.{key}: missing (needed when mailbox.kind = \"imap\")")
    if sections["outbox"]["kind"] == "smtp" and not sections["smtp"]["host"]:
        raise ConfigError('smtp.host: missing (needed when outbox.kind = "smtp")')
    mailboxes = _check_mailboxes(sections, listed)
    _check_default_routine(sections)
    if "@" not in sections["replies"]["from_address"]:
        raise ConfigError("replies.from_address: not an email address")
    _check_values(sections)
    return Config(sections=sections, base_dir=base_dir or Path.cwd(), env=dict(env or os.environ),
                  mailbox_list=mailboxes)


#: (section, key) -> (smallest, largest) allowed value.
_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("mailbox", "port"): (1, 65535),
    ("smtp", "port"): (1, 65535),
    ("web", "port"): (1, 65535),
    ("mailbox", "batch_size"): (1, 10_000),
    ("mailbox", "timeout"): (1, 3600),
    ("smtp", "timeout"): (1, 3600),
    ("mailbox", "max_message_bytes"): (1024, 1024**3),
    ("replies", "max_age_days"): (0, 3650),
    ("replies", "rate_limit_per_hour"): (0, 10_000),
    ("outbox", "interval_seconds"): (1, 86_400),
    ("outbox", "max_attempts"): (1, 1000),
    ("poll", "interval_seconds"): (1, 86_400),
    ("poll", "workers"): (0, 64),
    ("poll", "max_attempts"): (1, 100),
    ("store", "busy_timeout_seconds"): (0.01, 3600),
    ("personal_data", "reject_threshold"): (0, 1),
    ("personal_data", "hold_threshold"): (0, 1),
    ("personal_data", "max_findings"): (1, 10_000),
    ("personal_data", "max_scan_chars"): (1_000, 100_000_000),
    ("personal_data", "early_stop_chars"): (1_000, 100_000_000),
    ("web", "session_hours"): (0.1, 24 * 30),
    ("retention", "days"): (1, 36_500),
    ("register", "retention_days"): (1, 36_500),
    # several mailboxes and IDLE
    ("mailbox", "idle_refresh_seconds"): (10, 1740),  # RFC 2177: a server may end IDLE after 29 minutes
    ("mailbox", "backoff_max_seconds"): (1, 86_400),
    ("mailbox", "auth_backoff_seconds"): (1, 86_400),
    ("mailbox", "auth_backoff_max_seconds"): (1, 7 * 86_400),
}


def _check_values(sections: dict[str, dict[str, Any]]) -> None:
    """Values of the right type that would still fail later: out of range, bad list items, bad patterns."""
    for (section, key), (low, high) in _RANGES.items():
        value = sections.get(section, {}).get(key)
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{section}.{key}: must be between {low:g} and {high:g}, not {value!r}")
    for section, keys in SCHEMA.items():
        for key, (kind, _default) in keys.items():
            if kind is list:
                for item in sections[section][key]:
                    if not isinstance(item, str) or not item.strip():
                        raise ConfigError(f"{section}.{key}: every item must be a non-empty string, not {item!r}")
    if not sections["store"]["path"].strip():
        raise ConfigError("store.path: must not be empty")
    pd = sections["personal_data"]
    if pd["hold_threshold"] > pd["reject_threshold"]:
        raise ConfigError("personal_data.hold_threshold: must not be above personal_data.reject_threshold")
    for pattern in pd["person_hsa_suffixes"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"personal_data.person_hsa_suffixes: {pattern!r} is not a regular expression ({exc})"
            ) from None
    for proxy in sections.get("web", {}).get("trusted_proxies", []):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"web.trusted_proxies: {proxy!r} is not an address or network") from None


def _check_default_routine(sections: dict[str, dict[str, Any]]) -> None:
    """``mailbox.default_routine`` names an enabled routine; it may be left out only when one is enabled."""
    enabled = sections["routines"]["enabled"]
    if not enabled:
        raise ConfigError("routines.enabled: at least one routine is needed")
    if len(set(enabled)) != len(enabled):
        raise ConfigError("routines.enabled: a routine is listed twice")
    mailbox = sections["mailbox"]
    if not mailbox["default_routine"]:
        if len(enabled) > 1:
            raise ConfigError("mailbox.default_routine: missing (needed when more than one routine is enabled: "
                              "it answers mail whose subject fits none)")
        mailbox["default_routine"] = enabled[0]
    elif mailbox["default_routine"] not in enabled:
        raise ConfigError(f"mailbox.default_routine: {mailbox['default_routine']!r} is not one of routines.enabled")
# -- several mailboxes (issue 16): [[mailboxes]], each checked like [mailbox] ---------------------------------


@dataclass(frozen=True)
class MailboxConfig:
    """One mailbox the service serves: its ``[mailbox]``-shaped settings, folders and identity."""

    name: str
    settings: dict[str, Any]  # every key of SCHEMA["mailbox"], checked, defaults filled
    folders: dict[str, Any]  # every key of SCHEMA["mailbox.folders"]

    @classmethod
    def single(cls, sections: Mapping[str, dict[str, Any]]) -> MailboxConfig:
        """``[mailbox]`` as the one mailbox (its name defaults to ``default``)."""
        settings = dict(sections["mailbox"])
        return cls(name=settings["name"] or "default", settings=settings, folders=dict(sections["mailbox.folders"]))

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    @property
    def kind(self) -> str:
        return self.settings["kind"]

    def from_address(self, replies: Mapping[str, Any]) -> str:
        return self.settings["from_address"] or replies["from_address"]

    def from_name(self, replies: Mapping[str, Any]) -> str:
        return self.settings["from_name"] or replies["from_name"]


def _split_mailboxes(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """``data`` without its ``[[mailboxes]]`` list, and that list (``None`` when not given)."""
    data = dict(data)
    listed = data.pop("mailboxes", None)
    if listed is None:
        return data, None
    if not isinstance(listed, list) or not listed or not all(isinstance(m, dict) for m in listed):
        raise ConfigError("mailboxes: must be a list of tables ([[mailboxes]]), at least one")
    if "mailbox" in data:
        raise ConfigError("mailbox: give either [mailbox] or [[mailboxes]], not both")
    return data, listed


def _mailbox_entry(index: int, data: Mapping[str, Any]) -> MailboxConfig:
    """One ``[[mailboxes]]`` table, checked against the keys, choices and ranges of ``[mailbox]``."""
    where = f"mailboxes[{index}]"
    values = {k: v for k, v in data.items() if k != "folders"}
    folders_given = data.get("folders", {})
    if not isinstance(folders_given, dict):
        raise ConfigError(f"{where}.folders: must be a table")
    checked: dict[str, dict[str, Any]] = {}
    for section, given in (("mailbox", values), ("mailbox.folders", dict(folders_given))):
        out: dict[str, Any] = {}
        for key, (expected, default) in SCHEMA[section].items():
            name = f"{where}.{key}" if section == "mailbox" else f"{where}.folders.{key}"
            if key in given:
                out[key] = _check_type(name, given.pop(key), expected)
            else:
                out[key] = list(default) if isinstance(default, list) else default
            choices = _CHOICES.get((section, key))
            if choices and out[key] not in choices:
                raise ConfigError(f"{name}: must be one of {', '.join(choices)}, not {out[key]!r}")
            limits = _RANGES.get((section, key))
            if limits and not limits[0] <= out[key] <= limits[1]:
                raise ConfigError(f"{name}: must be between {limits[0]:g} and {limits[1]:g}, not {out[key]!r}")
        if given:
            raise ConfigError(f"{where}.{sorted(given)[0]}: unknown key")
        checked[section] = out
    settings = checked["mailbox"]
    if not settings["name"].strip():
        raise ConfigError(f"{where}.name: missing (every mailbox of [[mailboxes]] needs a name)")
    if settings["kind"] == "imap":
        for key in ("host", "username"):
            if not settings[key]:
                raise ConfigError(f'{where}.{key}: missing (needed when kind = "imap")')
    return MailboxConfig(name=settings["name"], settings=settings, folders=checked["mailbox.folders"])


def _check_mailboxes(sections: dict[str, dict[str, Any]], listed: list[Any] | None) -> tuple[MailboxConfig, ...]:
    """The ``[[mailboxes]]`` entries (``()`` when only ``[mailbox]`` is given), each checked and distinct."""
    mailboxes = (
        tuple(_mailbox_entry(i, entry) for i, entry in enumerate(listed)) if listed is not None
        else (MailboxConfig.single(sections),)
    )
    enabled = sections["routines"]["enabled"]
    names: set[str] = set()
    places: set[tuple[Any, ...]] = set()
    for i, box in enumerate(mailboxes):
        where = f"mailboxes[{i}]" if listed is not None else "mailbox"
        if box.name in names:
            raise ConfigError(f"{where}.name: {box.name!r} is used by another mailbox")
        names.add(box.name)
        place = ((box["kind"], box["path"]) if box["kind"] == "local"
                 else (box["kind"], box["host"].lower(), box["port"], box["username"], box["folder"]))
        if place in places:
            raise ConfigError(f"{where}: the same mailbox is configured twice")
        places.add(place)
        for routine in box["routines"]:
            if routine not in enabled:
                raise ConfigError(f"{where}.routines: {routine!r} is not in routines.enabled")
        served = box["routines"] or enabled
        if listed is not None and box["default_routine"] and box["default_routine"] not in served:
            raise ConfigError(f"{where}.default_routine: {box['default_routine']!r} is not a routine it serves")
        if listed is not None and not box["default_routine"]:
            # As for [mailbox]: it answers mail whose subject fits none, so it must be named among several.
            if len(served) > 1:
                raise ConfigError(f"{where}.default_routine: missing (needed when the mailbox serves more than "
                                  "one routine: it answers mail whose subject fits none)")
            box.settings["default_routine"] = served[0] if served else ""
        if box["from_address"] and "@" not in box["from_address"]:
            raise ConfigError(f"{where}.from_address: not an email address")
        if box["auth_backoff_seconds"] > box["auth_backoff_max_seconds"]:
            raise ConfigError(f"{where}.auth_backoff_seconds: must not be above auth_backoff_max_seconds")
    if listed is None:
        return ()
    sections["mailbox"] = dict(mailboxes[0].settings)  # code reading [mailbox] sees the first mailbox
    sections["mailbox.folders"] = dict(mailboxes[0].folders)
    return mailboxes


def load(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Load the TOML file at ``path``; ``None`` gives the embedded defaults (local folders)."""
    if path is None:
        return from_mapping({}, env=env)
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return from_mapping(data, base_dir=path.resolve().parent, env=env)
