"""Parsing in a child process with a memory cap (RLIMIT_AS), a CPU cap and a wall-clock timeout.

FIELD-NOTES: bombs that pass the zip checks still cost openpyxl/python-docx gigabytes and minutes;
in a bounded child they end as a clean error instead. The child gets the bytes and the schema on
stdin and answers with JSON on stdout (never pickle: the child handles hostile input).

All of a mail's files are parsed by one child under one total time limit (one interpreter start per
mail, and a mail with many files cannot buy itself many timeouts). The child answers one line per
file as it goes; if it dies (memory, crash), the file it was reading gets that answer and a fresh
child reads the rest with the time that is left, so one hostile file never changes another's answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from parsers.formgrid import FormData
from parsers.schema import FormSchema, form_schema_from_dict

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
    (result,) = parse_bounded_many([(fmt, data)], schema, memory_bytes=memory_bytes, timeout_s=timeout_s,
                                   max_rows=max_rows, max_cols=max_cols)
    if isinstance(result, SandboxError):
        raise result
    return result


def parse_bounded_many(
    files: list[tuple[str, bytes]],
    schema: FormSchema,
    *,
    memory_bytes: int = 1024 * 1024 * 1024,
    timeout_s: float = 30.0,
    max_rows: int = 2000,
    max_cols: int = 60,
) -> list[FormData | SandboxError]:
    """Parse each (format, bytes) in bounded children sharing ``timeout_s``; one answer per file, in order."""
    results: list[FormData | SandboxError] = []
    deadline = time.monotonic() + timeout_s
    while len(results) < len(files):
        left = deadline - time.monotonic()
        if left <= 0:
            results.append(SandboxError("timeout", f"after {timeout_s:g} s"))
            continue
        results.extend(_one_child(files[len(results):], schema, memory_bytes, left, timeout_s, max_rows, max_cols))
    return results


def _one_child(files: list[tuple[str, bytes]], schema: FormSchema, memory_bytes: int, left: float,
               timeout_s: float, max_rows: int, max_cols: int) -> list[FormData | SandboxError]:
    """Answers for a prefix of ``files`` (at least one) from one child process."""
    header = {"fmts": [f for f, _ in files], "sizes": [len(d) for _, d in files], "schema": schema.raw,
              "source": schema.source, "memory": memory_bytes, "cpu": int(left) + 1, "max_rows": max_rows,
              "max_cols": max_cols}
    payload = json.dumps(header).encode("utf-8") + b"\n" + b"".join(d for _, d in files)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    death: SandboxError | None = None
    try:
        proc = subprocess.run([sys.executable, "-s", "-c", _BOOT, _ROOT], input=payload, capture_output=True,
                              timeout=left, env=env, cwd=_ROOT, check=False)
        stdout, stderr, status = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, status = exc.stdout or b"", exc.stderr or b"", None
        death = SandboxError("timeout", f"after {timeout_s:g} s")
    except OSError as exc:
        return [SandboxError("crash", f"could not start: {exc.strerror}")]
    answers: list[FormData | SandboxError] = []
    for line in stdout.split(b"\n"):
        try:
            answer = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            break  # a line cut short by the child's death
        if not answer.get("ok"):
            error = str(answer.get("error", "error"))
            answers.append(SandboxError("memory" if error == "MemoryError" else "error", error))
            continue
        form = _decode(answer["form"])
        answers.append(FormData(kinds_checked=form["kinds_checked"], fields=form["fields"], users=form["users"],
                                labels_found=form["labels_found"]))
    if len(answers) < len(files) and not (death is None and status == 0 and answers):
        # (A child that ran out of memory answers that file and stops on purpose: a fresh one goes on.)
        if death is None:
            # Out of memory can strike where the child cannot answer any more (even while reporting it).
            death = (SandboxError("memory", "MemoryError") if b"MemoryError" in stderr[-4096:]
                     else SandboxError("crash", f"exit status {status}"))
        answers.append(death)
    return answers[: len(files)]


def child_main() -> None:
    """The child: limit itself, read the header line and the files from stdin, print a JSON line per file."""
    import gc
    import resource

    # Freed on MemoryError, so that the child can still write its answer.
    reserve = bytearray(8 * 1024 * 1024)
    raw = sys.stdin.buffer.read()
    head, _, blob = raw.partition(b"\n")
    header = json.loads(head)
    resource.setrlimit(resource.RLIMIT_AS, (header["memory"], header["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (header["cpu"], header["cpu"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the parse writes no files
    offset = 0
    schema = None
    for fmt, size in zip(header["fmts"], header["sizes"], strict=True):
        data = blob[offset: offset + size]
        offset += size
        try:
            schema = schema or form_schema_from_dict(header["schema"], header["source"])
            result = parse_in_process(fmt, data, schema, header["max_rows"], header["max_cols"])
            out = {"ok": True, "form": _encode({"kinds_checked": result.kinds_checked, "fields": result.fields,
                                                "users": result.users, "labels_found": result.labels_found})}
        except MemoryError:
            del reserve
            sys.stdout.write(json.dumps({"ok": False, "error": "MemoryError"}) + "\n")
            sys.stdout.flush()
            return  # a child that ran out of memory reads no more; a fresh one takes the rest
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a clean answer
            out = {"ok": False, "error": type(exc).__name__}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        result = None
        gc.collect()
