"""Parsing in a child process with a memory cap (RLIMIT_AS), a CPU cap and a wall-clock timeout.

FIELD-NOTES: bombs that pass the zip checks still cost openpyxl/python-docx gigabytes and minutes;
in a bounded child they end as a clean error instead. The child gets the bytes and the schema on
stdin and answers with JSON on stdout (never pickle: the child handles hostile input).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from parsers.formgrid import FormData
from rules.forms import FormSchema, form_schema_from_dict

_ROOT = str(Path(__file__).resolve().parents[1])
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from parsers.sandbox import child_main; child_main()"


class SandboxError(Exception):
    """The parse did not finish: ``kind`` is memory, timeout, crash or error (the exception's name)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def parse_in_process(fmt: str, data: bytes, schema: FormSchema, max_rows: int = 2000, max_cols: int = 60) -> FormData:
    """Parse without a sandbox (for tests of pure parsing; callers with mail use :func:`parse_bounded`)."""
    if fmt == "xlsx":
        from parsers.xlsx_form import parse_xlsx_form

        return parse_xlsx_form(data, schema, max_rows, max_cols)
    if fmt == "docx":
        from parsers.docx_form import parse_docx_form

        return parse_docx_form(data, schema, max_rows)
    raise ValueError(f"no form parser for {fmt!r}")


def _encode(value: Any) -> Any:
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$date"} and isinstance(value["$date"], str):
            return date.fromisoformat(value["$date"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def parse_bounded(
    fmt: str,
    data: bytes,
    schema: FormSchema,
    *,
    memory_bytes: int = 1024 * 1024 * 1024,
    timeout_s: float = 30.0,
    max_rows: int = 2000,
    max_cols: int = 60,
) -> FormData:
    """Parse ``data`` in a bounded child process; any failure is a :class:`SandboxError`."""
    header = {"fmt": fmt, "schema": schema.raw, "source": schema.source, "memory": memory_bytes,
              "cpu": int(timeout_s) + 1, "max_rows": max_rows, "max_cols": max_cols}
    payload = json.dumps(header).encode("utf-8") + b"\n" + data
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-s", "-c", _BOOT, _ROOT], input=payload, capture_output=True,
                              timeout=timeout_s, env=env, cwd=_ROOT, check=False)
    except subprocess.TimeoutExpired:
        raise SandboxError("timeout", f"after {timeout_s:g} s") from None
    except OSError as exc:
        raise SandboxError("crash", f"could not start: {exc.strerror}") from None
    try:
        answer = json.loads(proc.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Out of memory can strike where the child cannot answer any more (even while reporting it).
        if b"MemoryError" in proc.stderr[-4096:]:
            raise SandboxError("memory", "MemoryError") from None
        raise SandboxError("crash", f"exit status {proc.returncode}") from None
    if not answer.get("ok"):
        error = str(answer.get("error", "error"))
        raise SandboxError("memory" if error == "MemoryError" else "error", error)
    form = _decode(answer["form"])
    return FormData(kinds_checked=form["kinds_checked"], fields=form["fields"], users=form["users"],
                    labels_found=form["labels_found"])


def child_main() -> None:
    """The child: limit itself, read the header line and bytes from stdin, print JSON."""
    import resource

    # Freed on MemoryError, so that the child can still write its answer.
    reserve = bytearray(8 * 1024 * 1024)
    raw = sys.stdin.buffer.read()
    head, _, data = raw.partition(b"\n")
    header = json.loads(head)
    resource.setrlimit(resource.RLIMIT_AS, (header["memory"], header["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (header["cpu"], header["cpu"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the parse writes no files
    try:
        schema = form_schema_from_dict(header["schema"], header["source"])
        result = parse_in_process(header["fmt"], data, schema, header["max_rows"], header["max_cols"])
        out = {"ok": True, "form": _encode({"kinds_checked": result.kinds_checked, "fields": result.fields,
                                            "users": result.users, "labels_found": result.labels_found})}
    except MemoryError:
        del reserve
        out = {"ok": False, "error": "MemoryError"}
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a clean answer
        out = {"ok": False, "error": type(exc).__name__}
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
