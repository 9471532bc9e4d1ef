"""Parsing in a separate process with a memory cap (RLIMIT_AS), a CPU cap and a wall-clock timeout.

FIELD-NOTES: bombs that pass the zip checks still cost openpyxl/python-docx gigabytes and minutes;
in a bounded process they end as a clean error instead. The process gets the bytes and the schema
and answers with JSON lines (never pickle: it handles hostile input).

All of a mail's files are parsed by one process under one total time limit (a mail with many files
cannot buy itself many timeouts). It answers one line per file as it goes; if it dies (memory,
crash), the file it was reading gets that answer and a fresh process reads the rest with the time
that is left, so one hostile file never changes another's answer.

The process is a persistent worker (started once, the lean readers imported, then request after
request over a Unix socket): forking a bounded child per mail cost ~25 ms a form in pipes, forks and
page-table copies, ten times the lean parse itself. Its limits are set per request (address space;
CPU time from now on); the caller holds the wall clock and kills the worker when it runs over (the
answer is ``timeout``, and the next mail gets a new worker). A worker that ran out of memory answers
that file and exits; a file that dies in a worker that had served earlier mails is tried once more
in a fresh worker, so an answer never depends on what the worker read before. Workers are replaced
after ``RECYCLE_AFTER`` requests or once their peak RSS passed ``RECYCLE_RSS_KB``; concurrent callers
each get their own worker from a small pool. If no worker can be started, each mail gets a fresh
interpreter (the cold path, also ``WARM = False``).
"""

from __future__ import annotations

import atexit
import json
import os
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
_WORKER_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from parsers.sandbox import worker_main; "
                "worker_main(int(sys.argv[2]))")
WARM = True  # a persistent worker; False: a fresh interpreter per mail (the cold path)
LEAN = True  # the lean readers (parsers.leanform); False: openpyxl/python-docx for every file (benchmarks)
RECYCLE_AFTER = 1000  # requests a worker answers before it is replaced
RECYCLE_RSS_KB = 256 * 1024  # ... or once its peak RSS passed this
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a worker that writes more has gone wrong (a crash)
_MEMORY_EXIT = 3  # the worker's exit status when it ran out of memory where it could not answer
_MEMORY_LINE = b'{"ok": false, "error": "MemoryError"}\n'
last_child_peak_kb = 0  # peak RSS (KiB) of the last worker that answered, for benchmarks
last_worker_pid = 0  # and its process id (tests)


class SandboxError(Exception):
    """The parse did not finish: ``kind`` is memory, timeout, crash or error (the exception's name)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def parse_in_process(fmt: str, data: bytes, schema: FormSchema, max_rows: int = 2000, max_cols: int = 60, *,
                     lean: bool | None = None) -> FormData:
    """Parse without a sandbox (for tests of pure parsing; callers with mail use :func:`parse_bounded`).

    ``lean`` (default :data:`LEAN`): the lean reader first (:mod:`parsers.leanform`), the library for what it
    does not model; false: openpyxl/python-docx only.
    """
    lean = LEAN if lean is None else lean
    if fmt == "xlsx":
        from parsers.xlsx_form import parse_xlsx_form

        return parse_xlsx_form(data, schema, max_rows, max_cols, lean=lean)
    if fmt == "docx":
        from parsers.docx_form import parse_docx_form

        return parse_docx_form(data, schema, max_rows, lean=lean)
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
    """Parse each (format, bytes) in bounded processes sharing ``timeout_s``; one answer per file, in order."""
    results: list[FormData | SandboxError] = []
    deadline = time.monotonic() + timeout_s
    retried = -1  # the file last tried again in a fresh worker
    while len(results) < len(files):
        left = deadline - time.monotonic()
        if left <= 0:
            results.append(SandboxError("timeout", f"after {timeout_s:g} s"))
            continue
        answers, used = _one_child(files[len(results):], schema, memory_bytes, left, timeout_s, max_rows, max_cols,
                                   fresh=retried == len(results))
        last = answers[-1]
        if (used and isinstance(last, SandboxError) and last.kind in ("memory", "crash")
                and retried != len(results) + len(answers) - 1):
            # It died in a worker that had read other mails before: the answer must not depend on that.
            retried = len(results) + len(answers) - 1
            answers = answers[:-1]
        results.extend(answers)
    return results


def _one_child(files: list[tuple[str, bytes]], schema: FormSchema, memory_bytes: int, left: float,
               timeout_s: float, max_rows: int, max_cols: int, *,
               fresh: bool = False) -> tuple[list[FormData | SandboxError], bool]:
    """Answers for a prefix of ``files`` (at least one) from one process, and whether that process had
    answered earlier requests."""
    deadline = time.monotonic() + left  # (starting a worker counts)
    key = _schema_key(schema)
    worker = _take_worker(fresh=fresh) if WARM else None
    header = {"fmts": [f for f, _ in files], "sizes": [len(d) for _, d in files], "schema_key": key,
              "source": schema.source, "memory": memory_bytes, "cpu": int(left) + 1, "max_rows": max_rows,
              "max_cols": max_cols, "lean": LEAN}
    if worker is None or key not in worker.schemas:
        header["schema"] = schema.raw  # a worker keeps the schemas it was sent (as many as _schema keeps)
        if worker is not None and len(worker.schemas) >= _SCHEMAS_KEPT:
            worker.schemas.clear()
    payload = json.dumps(header).encode("utf-8") + b"\n" + b"".join(d for _, d in files)
    death: SandboxError | None = None
    used = worker is not None and worker.served > 0
    if worker is not None:
        worker.schemas.add(key)
        try:
            stdout, stderr, status, timed_out = worker.run(payload, deadline - time.monotonic())
        finally:
            _give_back(worker)
        if timed_out:
            death = SandboxError("timeout", f"after {timeout_s:g} s")
    else:
        try:
            proc = subprocess.run([sys.executable, "-s", "-c", _BOOT, _ROOT], input=payload, capture_output=True,
                                  timeout=max(deadline - time.monotonic(), 0.001), env=_child_env(), cwd=_ROOT,
                                  check=False)
            stdout, stderr, status = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            stdout, stderr, status = exc.stdout or b"", exc.stderr or b"", None
            death = SandboxError("timeout", f"after {timeout_s:g} s")
        except OSError as exc:
            return [SandboxError("crash", f"could not start: {exc.strerror}")], False
    answers: list[FormData | SandboxError] = []
    for line in stdout.split(b"\n"):
        try:
            answer = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            break  # a line cut short by the process's death
        if not answer.get("ok"):
            error = str(answer.get("error", "error"))
            answers.append(SandboxError("memory" if error == "MemoryError" else "error", error))
            continue
        form = _decode(answer["form"])
        answers.append(FormData(kinds_checked=form["kinds_checked"], fields=form["fields"], users=form["users"],
                                labels_found=form["labels_found"]))
    if len(answers) < len(files) and not (death is None and status == 0 and answers):
        # (A process that ran out of memory answers that file and stops on purpose: a fresh one goes on.)
        if death is None:
            # Out of memory can strike where the process cannot answer any more (even while reporting it).
            death = (SandboxError("memory", "MemoryError") if b"MemoryError" in stderr[-4096:]
                     else SandboxError("crash", f"exit status {status}"))
        answers.append(death)
    return answers[: len(files)], used


_schema_keys: dict[int, tuple[FormSchema, str]] = {}


def _schema_key(schema: FormSchema) -> str:
    """A name for the schema's content, so that a worker is sent each schema once (kept per schema object)."""
    hit = _schema_keys.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    import hashlib

    text = json.dumps([schema.raw, schema.source], sort_keys=True, default=str)
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if len(_schema_keys) >= 64:
        _schema_keys.clear()
    _schema_keys[id(schema)] = (schema, key)
    return key


def _child_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1"}


# --- the warm worker ---------------------------------------------------------------------------------------


class _Worker:
    """The parent's handle on a persistent worker: a process that parses request after request, and the
    socket they talk over. Only one request at a time (the pool hands a worker to one caller)."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-c", _WORKER_BOOT, _ROOT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=_child_env(), cwd=_ROOT, pass_fds=[theirs.fileno()])
        finally:
            theirs.close()
        self.sock = mine
        self.served = 0  # requests answered
        self.schemas: set[str] = set()  # keys of the schemas it was sent
        self.recycle = False
        mine.settimeout(60)
        try:
            ready = mine.recv(1)
        except OSError:
            ready = b""
        if ready != b"R":
            self.kill()
            raise OSError("the form-parsing worker did not start")

    def alive(self) -> bool:
        return not self.recycle and self.proc.poll() is None

    def run(self, payload: bytes, left: float) -> tuple[bytes, bytes, int | None, bool]:
        """(answer lines, stderr stand-in, exit status or 0 when it answered in full, timed out)."""
        global last_child_peak_kb, last_worker_pid
        deadline = time.monotonic() + left
        out = bytearray()
        try:
            self.sock.settimeout(max(left, 0.001))
            self.sock.sendall(struct.pack("!Q", len(payload)) + payload)
            while True:
                end = out.rfind(b"\n")
                if end >= 0:
                    last = out[out.rfind(b"\n", 0, end) + 1: end]
                    answers = len(out) - len(last) - 1
                    if last.startswith(b'{"done"') and answers <= MAX_ANSWER_BYTES:
                        done = json.loads(last)
                        last_child_peak_kb = int(done.get("peak_kb", 0))
                        last_worker_pid = self.proc.pid
                        self.served += 1
                        self.recycle = bool(done.get("recycle"))
                        return bytes(out[:answers]), b"", 0, False
                if len(out) > MAX_ANSWER_BYTES:
                    self.kill()
                    return b"", b"", -int(signal.SIGKILL), False  # a crash: no answer is that long
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break  # the worker has gone (out of memory, a crash, or it stopped on purpose)
                out += chunk
        except TimeoutError:
            self.kill()
            return bytes(out), b"", None, True
        except OSError:
            pass  # the worker died while we wrote to it
        try:
            status = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            status = self.proc.returncode
        self.sock.close()
        return bytes(out), (b"MemoryError" if status == _MEMORY_EXIT else b""), status, False

    def kill(self) -> None:
        self.recycle = True
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.recycle = True
        self.sock.close()  # the worker sees the end of its input and exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


_pool_lock = threading.Lock()
_idle: list[_Worker] = []  # workers waiting for a request (one per caller thread at most)
_worker_failed = False


def _take_worker(*, fresh: bool = False) -> _Worker | None:
    """An idle worker (unless ``fresh``), or a new one; None if none can be started (the cold path from then
    on). A worker being started by :func:`start_worker` is waited for rather than started twice."""
    global _worker_failed
    starting = _starting
    if starting is not None and not fresh and starting is not threading.current_thread():
        starting.join()
    with _pool_lock:
        while _idle and not fresh:
            worker = _idle.pop()
            if worker.alive():
                return worker
            worker.close()
        if _worker_failed:
            return None
    try:
        return _Worker()
    except OSError:
        _worker_failed = True
        return None


def _give_back(worker: _Worker) -> None:
    if not worker.alive() or worker.served >= RECYCLE_AFTER:
        worker.close()
        return
    with _pool_lock:
        _idle.append(worker)


_starting: threading.Thread | None = None  # the thread of the last start_worker()


def start_worker() -> threading.Thread:
    """Start a worker in the background now, so that the first form does not wait for it (a deciding worker
    calls this when it starts); returns the thread starting it. Nothing happens with ``WARM`` off."""
    global _starting

    def start() -> None:
        worker = _take_worker() if WARM else None
        if worker is not None:
            _give_back(worker)

    thread = threading.Thread(target=start, name="form-worker-start", daemon=True)
    _starting = thread
    thread.start()
    return thread


def stop_workers() -> None:
    """Stop the idle workers (new ones start on the next parse); also run at exit."""
    with _pool_lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


atexit.register(stop_workers)


def _forget_workers() -> None:
    """In a child forked from a process using workers (the poller's deciding workers): the parent's workers
    and sockets are the parent's. Drop our copies of the sockets, without a word to the workers, and start
    workers of our own when a form comes."""
    global _pool_lock, _starting
    _pool_lock = threading.Lock()  # may have been held by another thread at the fork
    _starting = None  # (the parent's thread, not running here)
    for worker in _idle:
        try:
            worker.sock.close()  # our copy of the descriptor only; the parent's stays open
        except OSError:
            pass
    _idle.clear()


os.register_at_fork(after_in_child=_forget_workers)


def worker_main(fd: int) -> None:
    """The worker: import the lean readers once, then answer request after request on socket ``fd``.

    A request is a length and then what the cold child reads on stdin; the answer is a JSON line per file
    and a last line ``{"done": ...}`` with this process's peak RSS and whether it should be replaced.
    Limits are set per request (address space, CPU time from now); the caller keeps the wall clock and kills
    the worker when it is over. After a MemoryError the worker answers that file and exits.
    """
    import resource

    import parsers.docx_form  # noqa: F401 - imported once: every request uses them
    import parsers.leanform  # noqa: F401
    import parsers.xlsx_form

    parsers.xlsx_form.READ_ONLY_PROCESS = True
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the parse writes no files
    sock = socket.socket(fileno=fd)
    reader = sock.makefile("rb")
    sock.sendall(b"R")
    try:
        while True:
            head = reader.read(8)
            if len(head) < 8:
                return  # the parent has gone or let us go
            payload = reader.read(struct.unpack("!Q", head)[0])
            header, blobs = _split(payload)
            _limit(resource.RLIMIT_AS, header["memory"])
            usage = resource.getrusage(resource.RUSAGE_SELF)
            _limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + header["cpu"])  # from now on
            for line in _answers(header, blobs):
                sock.sendall(line)
                if line == _MEMORY_LINE:
                    os._exit(0)  # a fresh worker takes the rest
            peak = _peak_rss_kb()
            recycle = peak > RECYCLE_RSS_KB
            sock.sendall(json.dumps({"done": True, "peak_kb": peak, "recycle": recycle}).encode() + b"\n")
            if recycle:
                return
    except MemoryError:
        os._exit(_MEMORY_EXIT)  # out of memory where no answer could be written


def _limit(which: int, soft: int) -> None:
    """Set the soft limit ``which`` (never above the hard limit, which stays, so that the next request may
    raise the soft one again)."""
    import resource

    hard = resource.getrlimit(which)[1]
    resource.setrlimit(which, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _peak_rss_kb() -> int:
    """This process's peak RSS in KiB since it started (VmHWM; ru_maxrss counts the parent's before exec)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_SCHEMAS: dict[str, FormSchema] = {}  # a worker's schemas by key
_SCHEMAS_KEPT = 16


def _schema(header: dict[str, Any]) -> FormSchema:
    key = header.get("schema_key", "")
    schema = _SCHEMAS.get(key)
    if schema is None:
        schema = form_schema_from_dict(header["schema"], header["source"])
        if len(_SCHEMAS) >= _SCHEMAS_KEPT:
            _SCHEMAS.clear()  # (the parent forgets them at the same point: see _one_child)
        _SCHEMAS[key] = schema
    return schema


def _split(payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    head, _, blob = payload.partition(b"\n")
    header = json.loads(head)
    blobs, offset = [], 0
    for size in header["sizes"]:
        blobs.append(blob[offset: offset + size])
        offset += size
    return header, blobs


def _answers(header: dict[str, Any], blobs: list[bytes]):  # noqa: ANN202 - a generator of lines
    """One JSON line per file; after a MemoryError that answer and nothing more."""
    import gc

    reserve = bytearray(8 * 1024 * 1024)  # freed on MemoryError, so that the answer can still be written
    schema = None
    for fmt, data in zip(header["fmts"], blobs, strict=True):
        try:
            schema = schema or _schema(header)
            result = parse_in_process(fmt, data, schema, header["max_rows"], header["max_cols"],
                                      lean=header.get("lean", True))
            out = {"ok": True, "form": _encode({"kinds_checked": result.kinds_checked, "fields": result.fields,
                                                "users": result.users, "labels_found": result.labels_found})}
        except MemoryError:
            del reserve
            result = None
            gc.collect()
            yield _MEMORY_LINE
            return
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a clean answer
            out = {"ok": False, "error": type(exc).__name__}
        result = None
        yield (json.dumps(out) + "\n").encode("utf-8")
    del reserve


def child_main() -> None:
    """The cold child: limit itself, read the header line and the files from stdin, print a JSON line per file."""
    import resource

    raw = sys.stdin.buffer.read()
    header, blobs = _split(raw)
    resource.setrlimit(resource.RLIMIT_AS, (header["memory"], header["memory"]))
    resource.setrlimit(resource.RLIMIT_CPU, (header["cpu"], header["cpu"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the parse writes no files
    import parsers.xlsx_form

    parsers.xlsx_form.READ_ONLY_PROCESS = True
    for line in _answers(header, blobs):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
