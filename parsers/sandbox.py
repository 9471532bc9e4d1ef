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

import atexit
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from parsers.formgrid import FormData
from parsers.schema import FormSchema, form_schema_from_dict

_ROOT = str(Path(__file__).resolve().parents[1])
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from parsers.sandbox import child_main; child_main()"
_ZYGOTE_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from parsers.sandbox import zygote_main; "
                "zygote_main(int(sys.argv[2]))")
WARM = True  # fork children from a warm zygote; False: a fresh interpreter per mail (the cold path)
last_child_peak_kb = 0  # peak RSS (KiB) of the last warm child, for benchmarks (it is not our child)


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
    death: SandboxError | None = None
    warm = _zygote() if WARM else None
    ran = _run_warm(warm, payload, left) if warm is not None else None
    if ran is not None:
        stdout, stderr, status, timed_out = ran
        if timed_out:
            death = SandboxError("timeout", f"after {timeout_s:g} s")
    else:
        try:
            proc = subprocess.run([sys.executable, "-s", "-c", _BOOT, _ROOT], input=payload, capture_output=True,
                                  timeout=left, env=_child_env(), cwd=_ROOT, check=False)
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


def _child_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1"}


# --- the warm zygote -------------------------------------------------------------------------------------


class _Zygote:
    """The parent's handle on a running zygote: a process and the socket that asks it for children."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-c", _ZYGOTE_BOOT, _ROOT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=_child_env(), cwd=_ROOT, pass_fds=[theirs.fileno()])
        finally:
            theirs.close()
        self.sock = mine
        self.lock = threading.Lock()
        mine.settimeout(60)
        try:
            ready = mine.recv(1)
        except OSError:
            ready = b""
        if ready != b"R":
            self.close()
            raise OSError("the form-parsing zygote did not start")
        mine.settimeout(10)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, fds: list[int]) -> None:
        with self.lock:
            socket.send_fds(self.sock, [b"F"], fds)

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_zygote_lock = threading.Lock()
_the_zygote: _Zygote | None = None
_zygote_failed = False


def _zygote() -> _Zygote | None:
    """The running zygote, started on first use (and again if it died); None if it cannot be started."""
    global _the_zygote, _zygote_failed
    with _zygote_lock:
        if _the_zygote is not None and not _the_zygote.alive():
            _the_zygote.close()
            _the_zygote = None
        if _the_zygote is None and not _zygote_failed:
            try:
                _the_zygote = _Zygote()
            except OSError:
                _zygote_failed = True  # the cold path from now on
        return _the_zygote


def stop_zygote() -> None:
    """Stop the zygote (it is started again on the next parse); also run at exit."""
    global _the_zygote
    with _zygote_lock:
        if _the_zygote is not None:
            _the_zygote.close()
            _the_zygote = None


atexit.register(stop_zygote)


def _run_warm(zygote: _Zygote, payload: bytes, left: float) -> tuple[bytes, bytes, int | None, bool] | None:
    """Run one child forked by ``zygote`` on ``payload``: (stdout, stderr, exit status, timed out), or None
    when the zygote could not be asked (the caller falls back to the cold path)."""
    global last_child_peak_kb
    deadline = time.monotonic() + left
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    try:
        zygote.request([in_r, out_w, err_w, st_w])
    except OSError:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w, st_r, st_w):
            os.close(fd)
        return None
    for fd in (in_r, out_w, err_w, st_w):
        os.close(fd)
    os.set_blocking(in_w, False)
    bufs = {out_r: bytearray(), err_r: bytearray(), st_r: bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    view, sent = memoryview(payload), 0
    in_open = bool(payload)
    if in_open:
        sel.register(in_w, selectors.EVENT_WRITE)
    else:
        os.close(in_w)
    pid: int | None = None
    timed_out = False
    grace: float | None = None  # after a kill: a short wait for what the child had written
    try:
        while len(sel.get_map()):
            now = time.monotonic()
            if grace is None and now >= deadline:
                timed_out = True
                _kill(pid, bufs[st_r])
                grace = now + 5
            if grace is not None and now >= grace:
                break
            for key, _ in sel.select(max(0.0, (grace or deadline) - now)):
                fd = key.fd
                if fd == in_w:
                    try:
                        sent += os.write(in_w, view[sent: sent + 65536])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        sent = len(payload)  # the child stopped reading (it died): nothing more to send
                    if sent >= len(payload):
                        sel.unregister(in_w)
                        os.close(in_w)
                        in_open = False
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(fd)
                    continue
                bufs[fd] += chunk
                if fd == st_r and pid is None and len(bufs[st_r]) >= 4:
                    pid = struct.unpack("!i", bufs[st_r][:4])[0]
                    if timed_out:
                        _kill(pid, bufs[st_r])
    finally:
        sel.close()  # (each descriptor is closed exactly once: another thread may reuse the number)
        if in_open:
            os.close(in_w)
        for fd in (out_r, err_r, st_r):
            os.close(fd)
    status: int | None = None
    if len(bufs[st_r]) >= 16:
        status, peak = struct.unpack("!iq", bufs[st_r][4:16])
        last_child_peak_kb = peak
    return bytes(bufs[out_r]), bytes(bufs[err_r]), (None if timed_out else status), timed_out


def _kill(pid: int | None, status: bytearray) -> None:
    """Kill the child ``pid`` unless its exit status has come (then it is reaped, and the pid not its own)."""
    if pid is not None and len(status) < 16:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def zygote_main(fd: int) -> None:
    """The zygote: import the parsers once, then fork a monitored child per request on socket ``fd``."""
    import gc

    import docx  # noqa: F401 - imported here once, so that every child has it
    import openpyxl  # noqa: F401

    import parsers.docx_form  # noqa: F401
    import parsers.xlsx_form  # noqa: F401

    sock = socket.socket(fileno=fd)
    gc.collect()
    gc.freeze()  # the warm heap stays shared with the children (no copy on their collections)
    sock.sendall(b"R")
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 16, 4)
        except OSError:
            break
        if not msg:
            break  # the parent has gone
        _reap(block=False)
        if len(fds) != 4:
            for f in fds:
                os.close(f)
            continue
        if os.fork() == 0:
            sock.close()
            _monitor(*fds)
        for f in fds:
            os.close(f)
    _reap(block=True)


def _reap(*, block: bool) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _monitor(stdin_fd: int, stdout_fd: int, stderr_fd: int, status_fd: int) -> None:
    """Between zygote and child: fork the child on the given pipes, report its pid, then its exit status."""
    try:
        worker = os.fork()
        if worker == 0:
            os.close(status_fd)
            for target, fd in ((0, stdin_fd), (1, stdout_fd), (2, stderr_fd)):
                os.dup2(fd, target)
                os.close(fd)
            code = 1
            try:
                child_main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except MemoryError:
                os.write(2, b"MemoryError\n")
            except BaseException:  # noqa: BLE001 - reported on stderr like an interpreter would
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        for fd in (stdin_fd, stdout_fd, stderr_fd):
            os.close(fd)
        try:
            os.write(status_fd, struct.pack("!i", worker))
        except OSError:
            os.kill(worker, signal.SIGKILL)  # the caller has gone: nobody would read the answer or stop it
        _, status, usage = os.wait4(worker, 0)
        try:
            os.write(status_fd, struct.pack("!iq", os.waitstatus_to_exitcode(status), usage.ru_maxrss))
        except OSError:
            pass
    finally:
        os._exit(0)


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
    from parsers.xlsx_form import skip_merged_border_styles

    skip_merged_border_styles()  # this process only reads forms
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
