"""Evidence in, NDJSON decisions out, in constant memory, on one core or several.

``write_ndjson`` is what ``airgate evaluate --format ndjson`` runs. With
``jobs=1`` it reads, matches and writes in this process. With more, this
process reads the input in chunks of about :data:`CHUNK_BYTES` and worker
processes (forked, so they share the compiled engine) parse, match and encode
them, while this one writes their text in input order.

The output is byte for byte the output of one process, errors included:

* A chunk ends only where the investigation changes, so that no
  investigation's items are split across chunks (the engine merges the items
  of one investigation while they arrive together). Finding that place costs
  this process one extra parse of a line or two per chunk.
* Evidence that cannot be read stops the run where one process would stop:
  everything before it is written, except the decisions of the investigation
  that was still arriving, and the error is raised.

Warnings are passed to ``on_warning`` chunk by chunk, in input order.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airgate.catalog import Catalog
from airgate.engine.core import Engine
from airgate.engine.decision_json import decision_to_dict
from airgate.errors import AirgateError, EvidenceError, Finding
from airgate.evidence.reader import Parsed, Source, Unit, iter_evidence, iter_units, parse_line
from airgate.model import Evidence

if TYPE_CHECKING:
    from concurrent.futures import Future

CHUNK_BYTES = 1 << 20  # input bytes a worker takes at a time
# A chunk that grows this large without an investigation change is not held in
# memory: from there on this process reads and evaluates alone, in constant memory.
MAX_CHUNK_BYTES = 32 << 20
MAX_AUTO_JOBS = 8
Write = Callable[[str], Any]
Warn = Callable[[Finding], None]


def default_jobs() -> int:
    """Worker processes ``jobs=0`` means: the CPUs this process may run on, at most 8;
    1 where processes cannot be forked (only Linux forks here)."""
    if not fork_available():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_JOBS))


def fork_available() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def ndjson_texts(engine: Engine, items: Iterable[Evidence], catalog: Catalog, *,
                 explain: bool = False) -> Iterator[str]:
    """The NDJSON text of the decisions of ``items``, one string per investigation.

    Without ``explain`` the lines come from the decision encoder, which assembles
    the same text as encoding ``decision_to_dict`` from cached pieces (four times
    faster). With it, each decision carries its explanation, and each item that got
    no decision has a ``no_decision`` line.
    """
    import json

    from airgate.engine.decision_json import decision_encoder

    if explain:
        from airgate.engine import explain as explain_mod

        encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        compiled = engine.compiled

        def explained(decision: Any) -> str:
            out = decision_to_dict(decision, catalog)
            out["explanation"] = explain_mod.explain_decision(compiled, decision)
            return encode(out)

        for batch in engine.iter_batches(items):
            lines = [explained(decision) for decision in batch.decisions]
            lines.extend(encode({"no_decision": explain_mod.explain_unmatched(compiled, ev)})
                         for ev in batch.unmatched)
            if lines:
                yield "\n".join(lines) + "\n"
        return
    to_line = decision_encoder(catalog)
    for batch in engine.iter_batches(items):
        if batch.decisions:
            yield "\n".join([to_line(decision) for decision in batch.decisions]) + "\n"


def write_ndjson(engine: Engine, sources: Iterable[Source], write: Write, *,
                 catalog: Catalog, explain: bool = False, jobs: int = 1,
                 on_warning: Warn | None = None,
                 on_items: Callable[[int], None] | None = None,
                 flush: Callable[[], Any] | None = None) -> None:
    """Evaluate every source in order and ``write`` the NDJSON decisions.

    ``jobs``: worker processes. 0 means :func:`default_jobs` when every source is a
    regular file, and this process alone when one is a pipe or standard input: a
    live feed wants each investigation's decisions as soon as its items have
    arrived, not once a chunk has filled. Then ``flush`` (if given) is called after
    each investigation's text. The durable engine, and platforms that cannot fork,
    always run in this process. ``on_items`` is told how many more evidence items
    were evaluated, now and then (progress). Raises the first
    :class:`~airgate.errors.EvidenceError` of the input after writing what comes
    before it.
    """
    warn = on_warning or _ignore
    sources = list(sources)
    live = not all(_regular_file(s) for s in sources)
    if jobs == 0:
        jobs = 1 if live else default_jobs()
    if jobs > 1 and engine.name == "indexed" and fork_available():
        _parallel(_Job(engine, catalog, explain), sources, write, jobs, warn, on_items)
        return
    items: Iterable[Evidence] = itertools.chain.from_iterable(
        iter_evidence(source, on_warning=warn) for source in sources)
    if on_items is not None:
        items = _counted(items, on_items)
    for text in ndjson_texts(engine, items, catalog, explain=explain):
        write(text)
        if live and flush is not None:
            flush()


def _ignore(_finding: Finding) -> None:
    pass


def _regular_file(source: Source) -> bool:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source) != "-" and os.path.isfile(source)
    return False  # an open stream: it may be a live one


def _counted(items: Iterable[Evidence], on_items: Callable[[int], None],
             every: int = 1000) -> Iterator[Evidence]:
    count = 0
    for item in items:
        yield item
        count += 1
        if count == every:
            on_items(count)
            count = 0
    if count:
        on_items(count)


# ---------------------------------------------------------------- parallel
@dataclass(frozen=True, eq=False)
class _Job:
    engine: Engine
    catalog: Catalog
    explain: bool


@dataclass
class _Chunk:
    units: list[Unit] = field(default_factory=list)
    size: int = 0
    error: EvidenceError | None = None  # raised after the units: the input stopped there

    # Set on a chunk that grew past MAX_CHUNK_BYTES without a place to cut: the
    # units still to read, which this process evaluates after it, alone.
    rest: Iterator[Unit] | None = None

    def payload(self) -> tuple[list[Unit], EvidenceError | None]:
        return self.units, self.error


Result = tuple[str, list[Finding], int, EvidenceError | None]

_WORKER_JOB: _Job | None = None


def _worker_init(job: _Job, parent: int) -> None:
    global _WORKER_JOB
    # Ctrl-C reaches the whole process group: this process's parent handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    _WORKER_JOB = job


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies (SIGKILL, SIGTERM): an
    orphan would wait for work forever, holding the output pipe open."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux's libc: the parent's shutdown still ends us
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_run(units: list[Unit], error: EvidenceError | None) -> Result:
    assert _WORKER_JOB is not None, "worker not initialised"
    return _run(_WORKER_JOB, units, error)


def _run(job: _Job, units: list[Unit], error: EvidenceError | None) -> Result:
    """Text, warnings, item count and error of one chunk, as one process would have them."""
    warnings: list[Finding] = []
    count = 0

    def tally(items: int) -> None:
        nonlocal count
        count += items

    out: list[str] = []
    items = _items(units, warnings.append, tally, error)
    try:
        out.extend(ndjson_texts(job.engine, items, job.catalog, explain=job.explain))
    except EvidenceError as exc:
        return "".join(out), warnings, count, exc
    return "".join(out), warnings, count, None


def _items(units: Iterable[Unit], warn: Warn, on_items: Callable[[int], None] | None,
           error: EvidenceError | None = None) -> Iterator[Evidence]:
    """The evidence of ``units`` in order, warnings passed on in order, ``on_items``
    told the number of each unit's items; then ``error`` raised, as where one process
    would meet it (the open batch is not flushed)."""
    for unit in units:
        if isinstance(unit, Parsed):
            for finding in unit.warnings:  # found when the document was read
                warn(finding)
            got = unit.items
        else:
            got = parse_line(unit, on_warning=warn)
        if on_items is not None:
            on_items(len(got))
        yield from got
    if error is not None:
        raise error


def _chunks(units: Iterator[Unit], target: int) -> Iterator[_Chunk]:
    """Units grouped into chunks of about ``target`` bytes, cut where the investigation
    changes. The chunk with an error (from reading or, found while looking for a cut,
    from parsing) is the last one."""
    chunk = _Chunk()
    last: str | None = None  # investigation of the last item, once looking for a cut
    while True:
        try:
            unit = next(units, None)
        except EvidenceError as exc:
            chunk.error = exc
            yield chunk
            return
        if unit is None:
            if chunk.units:
                yield chunk
            return
        if chunk.size >= target:
            try:
                found = unit.items if isinstance(unit, Parsed) else parse_line(unit)
            except EvidenceError:
                # The worker meets this error again, in order; nothing after it is read.
                chunk.units.append(unit)
                yield chunk
                return
            if found:
                if last is not None and found[0].investigation != last:
                    yield chunk
                    chunk = _Chunk()
                    last = None
                else:
                    last = found[-1].investigation
        chunk.units.append(unit)
        chunk.size += _size(unit)
        if chunk.size >= MAX_CHUNK_BYTES:
            chunk.rest = units  # one investigation this large: this process goes on alone
            yield chunk
            return


def _size(unit: Unit) -> int:
    if isinstance(unit, Parsed):
        return 256 * len(unit.items)
    return len(unit[2])


def _all_units(sources: Iterable[Source]) -> Iterator[Unit]:
    for source in sources:
        yield from iter_units(source)


def _parallel(job: _Job, sources: Iterable[Source], write: Write, jobs: int, warn: Warn,
              on_items: Callable[[int], None] | None) -> None:
    chunks = _chunks(_all_units(sources), CHUNK_BYTES)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None) if first.rest is None else None
    if second is None:  # a small input (or a huge investigation): not worth a process
        _here(job, first, write, warn, on_items)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Text still buffered here would be written again by each child on its exit.
    sys.stdout.flush()
    sys.stderr.flush()
    executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_worker_init, initargs=(job, os.getpid()))
    pending: deque[Future[Result]] = deque()
    try:
        for chunk in itertools.chain((first, second), chunks):
            if chunk.rest is not None:
                while pending:
                    _collect(pending.popleft(), write, warn, on_items)
                _here(job, chunk, write, warn, on_items)
                break
            pending.append(executor.submit(_worker_run, *chunk.payload()))
            # Write what is done as soon as it is (an error stops the reading early).
            while pending and (len(pending) > 2 * jobs or pending[0].done()):
                _collect(pending.popleft(), write, warn, on_items)
        while pending:
            _collect(pending.popleft(), write, warn, on_items)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _here(job: _Job, chunk: _Chunk, write: Write, warn: Warn,
          on_items: Callable[[int], None] | None) -> None:
    """Evaluate a chunk, and the units after it if it has them, in this process."""
    if chunk.rest is None:
        _emit(_run(job, *chunk.payload()), write, warn, on_items)
        return
    items = _items(itertools.chain(chunk.units, chunk.rest), warn, on_items)
    for text in ndjson_texts(job.engine, items, job.catalog, explain=job.explain):
        write(text)


def _collect(future: Future[Result], write: Write, warn: Warn,
             on_items: Callable[[int], None] | None) -> None:
    from concurrent.futures.process import BrokenProcessPool

    try:
        result = future.result()
    except BrokenProcessPool as exc:
        raise AirgateError(f"a worker process of airgate evaluate died ({exc});"
                           " run again with --jobs 1 to evaluate in one process") from None
    _emit(result, write, warn, on_items)


def _emit(result: Result, write: Write, warn: Warn,
          on_items: Callable[[int], None] | None) -> None:
    text, warnings, count, error = result
    for finding in warnings:
        warn(finding)
    if text:
        write(text)
    if on_items is not None and count:
        on_items(count)
    if error is not None:
        raise error
