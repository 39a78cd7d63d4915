"""Progress a person can read: the project's one way of making progress bars.

:func:`progress_bar` makes every bar of the package:

* on a terminal (the stream is a TTY): a tqdm bar with total, rate and ETA;
* elsewhere (a log file, CI, a pipe): plain lines at a bounded rate, one every
  ``$STL_PROGRESS_INTERVAL`` seconds (default 30) plus one at the start and one at the end,
  INFO lines of the ``stl.progress`` logger when logging is configured (the CLI), else on stderr::

      12:03:14 INFO stl.progress: STL-WL ilsvrc2012_val: 12.4/128 img (10%), 0.081 img/s (12 s/img), ETA 24 min

  no carriage returns, no line per update;
* ``inner=True`` bars (the forwards of one image) only on a terminal;
* ``enabled=False`` (``--no-progress``): nothing at all.

A job's bar counts images, but one image of STL takes thousands of forwards (minutes on a
loaded CPU), so :func:`job_bar` adds :class:`JobProgress`: while ``with bar.tracking():``
is open, the forwards STL runs in this thread (:func:`report_forwards`, called by
:class:`stl.core.localization.ForwardScheduler`) move the bar by fractions of an image,
against the forwards STL expects for the chunk being computed (:func:`expect_forwards`: an
upper bound from the images' initial regions, corrected by what the finished chunks really
took). ``update(n)`` -- n images committed -- snaps the bar to the true count; the fraction
never reaches the end of the chunk in flight, so the bar never runs ahead of what is stored.

A utility module: it imports nothing from the package (the core reports to it).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from typing import Iterable, Optional

#: seconds between two progress lines in a log (not a terminal); ``$STL_PROGRESS_INTERVAL`` overrides
DEFAULT_INTERVAL = 30.0
#: forwards one STL image takes when nothing better is known (Lite0, the authors' settings: ~2,200)
DEFAULT_FORWARDS_PER_IMAGE = 2200
#: the most of a chunk in flight the forwards may show (the rest comes with its commit)
MAX_CHUNK_FRACTION = 0.99

_FRACTIONAL_FORMAT = "{l_bar}{bar}| {n:.1f}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

_clock = time.monotonic  # the log bars' clock (tests replace it)

_ACTIVE: contextvars.ContextVar[Optional["JobProgress"]] = contextvars.ContextVar("stl_job_progress", default=None)


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # a closed or odd stream
        return False


def log_interval() -> float:
    """Seconds between progress lines in a log (``$STL_PROGRESS_INTERVAL``, default 30)."""
    try:
        v = float(os.environ.get("STL_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return v if v >= 0 else DEFAULT_INTERVAL


def progress_bar(iterable: Optional[Iterable] = None, *, total=None, desc: str = "", unit: str = "img",
                 enabled: bool = True, inner: bool = False, initial=0, file=None,
                 interval: Optional[float] = None, fractional: bool = False, smoothing: float = 0.1):
    """THE function that makes the package's progress bars (see the module's text).

    Returns a tqdm-like object (``update``, ``set_postfix_str``, ``write``, ``close``, iteration,
    ``with``): a tqdm bar on a terminal, a :class:`LogBar` elsewhere, a disabled tqdm when
    ``enabled`` is False or for an ``inner`` bar off a terminal. ``fractional``: ``n`` is shown
    with one decimal (a job bar moved by forwards). ``interval``: seconds between log lines
    (default :func:`log_interval`)."""
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if not enabled or (inner and not is_terminal(stream)):
        return tqdm(iterable, total=total, disable=True)
    if is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc or None, unit=unit, initial=initial, file=stream,
                    dynamic_ncols=True, leave=not inner, smoothing=smoothing,
                    bar_format=_FRACTIONAL_FORMAT if fractional and total else None)
    # where the command's log goes (the CLI's logging: same format as every log line), else the stream
    logger = logging.getLogger(__name__)
    if file is not None or not logger.hasHandlers() or not logger.isEnabledFor(logging.INFO):
        logger = None
    return LogBar(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream, logger=logger,
                  interval=log_interval() if interval is None else interval)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" if s < 600 else f"{round(s / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _rate(per_second: float, unit: str) -> str:
    if per_second <= 0:
        return f"? {unit}/s"
    if per_second < 1:
        return f"{per_second:.3g} {unit}/s ({_duration(1 / per_second)}/{unit})"
    return f"{per_second:.3g} {unit}/s"


class LogBar:
    """A progress bar for a log: a line at the start, at most one every ``interval`` seconds as
    it moves, and one at the end (``close``); each line holds count, total, percentage, rate
    and ETA. tqdm's interface as the package uses it."""

    def __init__(self, iterable=None, *, total=None, desc="", unit="img", initial=0, file=None, logger=None,
                 interval: float = DEFAULT_INTERVAL):
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.initial = initial
        self.file = file if file is not None else sys.stderr
        self.logger = logger  # lines go to this logging.Logger (INFO) if given, else to ``file``
        self.interval = float(interval)
        self.postfix = ""
        self.disable = False
        self.start = _clock()
        self.closed = False
        self._last_line = None  # (time, n) of the latest line
        self._line()

    # -- what a line says ------------------------------------------------------------------
    def _count(self, n) -> str:
        text = f"{int(n)}" if n == int(n) else f"{n:.1f}"
        return text + (f"/{self.total}" if self.total is not None else "")

    def format_line(self, now: Optional[float] = None) -> str:
        now = _clock() if now is None else now
        elapsed = now - self.start
        parts = [f"{self._count(self.n)} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        if self.closed:
            finished = "done in" if self.total is None or self.n >= self.total else "stopped after"
            parts.append(f"{_rate(rate, self.unit)}, {finished} {_duration(elapsed)}" if done
                         else f"{finished} {_duration(elapsed)}")
        elif done > 0:
            parts.append(_rate(rate, self.unit))
            if self.total is not None:
                parts.append(f"ETA {_duration(max(0.0, self.total - self.n) / rate)}")
        elif self.n != self.total:
            parts.append(f"started {_duration(elapsed)} ago" if elapsed >= 1 else "starting")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc + ': ' if self.desc else ''}" + ", ".join(parts)

    def _line(self, now: Optional[float] = None):
        now = _clock() if now is None else now
        self._print(self.format_line(now))
        self._last_line = (now, self.n)

    def _print(self, text, level=logging.INFO):
        if self.logger is not None:
            self.logger.log(level, text)
            return
        try:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self.file, flush=True)
        except (OSError, ValueError):  # a closed log: progress is not worth an error
            pass

    # -- tqdm's interface ------------------------------------------------------------------
    def update(self, n=1):
        self.n += n
        now = _clock()
        if (not self.closed and now - self._last_line[0] >= self.interval and self.n != self._last_line[1]
                and self.n != self.total):  # the end: close() says it
            self._line(now)

    def refresh(self):
        pass

    def set_postfix_str(self, s="", refresh=True):
        self.postfix = str(s)

    def set_description(self, desc=None, refresh=True):
        self.desc = desc or ""

    def write(self, s, file=None, end="\n"):
        """A message beside the bar (the runner's failed images): a WARNING of the log."""
        self._print(str(s).rstrip("\n"), logging.WARNING)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._line()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()  # as tqdm: a bar over an iterable ends with it

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class JobProgress:
    """A job's bar in images that the forwards of the chunk in flight move by fractions.

    ``chunk``: images computed together (the fraction never passes
    ``min(chunk, images left)``); ``phases``: how many STL calls one chunk makes (``stl demo``:
    STL-WL then STL-CL, 2), each reporting its own expected forwards."""

    def __init__(self, bar, chunk: int = 1, phases: int = 1):
        self.bar = bar
        self.total = bar.total
        self.committed = bar.n
        self.n = bar.n  #: images shown: committed plus the fraction of the chunk in flight
        self.chunk = max(1, int(chunk))
        self.phases = max(1, int(phases))
        self._spent = 0.0  # forwards / expected forwards of the finished chunks: the estimate's correction
        self._estimated = 0.0
        self._new_chunk()

    def _new_chunk(self):
        self._expected = []  # expected forwards of each phase of the chunk in flight
        self._done = [0]  # forwards run in each phase
        self._fraction = 0.0
        self._chunk_start = self.committed  # images finished before the chunk in flight
        self._chunk_images = self.in_flight
        self._chunk_finished = 0  # of its images, finished so far (the runner commits each at once)

    @property
    def in_flight(self) -> int:
        """Images of the chunk being computed."""
        left = self.total - self.committed if self.total is not None else self.chunk
        return max(0, min(self.chunk, left))

    def correction(self) -> float:
        """Forwards really run per forward expected, over the finished chunks (1 before any)."""
        return self._spent / self._estimated if self._estimated > 0 and self._spent > 0 else 1.0

    # -- reported by STL (through report_forwards / expect_forwards) -------------------------
    def expect(self, forwards: float):
        """A new STL call of the chunk in flight expects about ``forwards`` forwards."""
        if self._expected:
            self._done.append(0)
        self._expected.append(max(1.0, float(forwards)))

    def forwards(self, n: int):
        self._done[-1] += n
        images = self.in_flight
        if not images:
            return
        if not self._expected:  # forwards nobody announced: the typical STL image
            self._expected.append(float(DEFAULT_FORWARDS_PER_IMAGE * images))
        phases = max(self.phases, len(self._expected))
        k = len(self._expected) - 1
        frac = (k + min(1.0, self._done[-1] / (self._expected[-1] * self.correction()))) / phases
        frac = min(frac, MAX_CHUNK_FRACTION) * (self._chunk_images or images)
        if frac > self._fraction:
            self._fraction = frac
            shown = max(self.committed, self._chunk_start + frac)
            if shown > self.n:
                self._show(shown)

    # -- the tqdm interface the runner uses ---------------------------------------------------
    def update(self, n=1):
        """``n`` images are finished (stored or failed). When the chunk in flight is finished the bar
        snaps to the true count; an image finished inside it lifts the bar to at least the count
        (never back: the chunk's fraction may already be past it)."""
        self.committed += n
        self._chunk_finished += n
        if self._chunk_finished < self._chunk_images:
            if self.committed > self.n:
                self._show(self.committed)
            return
        if self._expected:
            self._spent += sum(self._done)
            self._estimated += sum(self._expected)
        self._show(self.committed)
        self._new_chunk()

    def _show(self, n):
        delta = n - self.n
        self.n = n
        if delta >= 0:
            self.bar.update(delta)
        self.bar.n = n  # exact, whatever the fractions summed to
        if delta < 0:
            self.bar.refresh()

    def each(self, iterable):
        """The items of ``iterable``, one image committed (:meth:`update`) after each."""
        for item in iterable:
            yield item
            self.update(1)

    def set_postfix_str(self, s="", refresh=True):
        self.bar.set_postfix_str(s, refresh=refresh)

    def write(self, s):
        self.bar.write(s)

    def close(self):
        self.bar.close()

    @contextlib.contextmanager
    def tracking(self):
        """Route the forwards reported in this context (this thread) to the bar (none when the bar
        is off: STL then does not even estimate them)."""
        if getattr(self.bar, "disable", False):
            yield self
            return
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def job_bar(*, total, desc="", unit="img", enabled: bool = True, initial=0, chunk: int = 1, phases: int = 1,
            file=None, interval: Optional[float] = None) -> JobProgress:
    """One job's bar (``stl run``: per method run; ``stl localize`` / ``stl demo``: per command)
    over its ``total`` images, moved inside the chunk in flight by the forwards STL reports
    while ``with bar.tracking():`` is open (:class:`JobProgress`)."""
    bar = progress_bar(total=total, desc=desc, unit=unit, enabled=enabled, initial=initial, file=file,
                       interval=interval, fractional=True, smoothing=0.05)
    return JobProgress(bar, chunk=chunk, phases=phases)


# ----------------------------------------------------------------------------- what STL reports
def tracking() -> bool:
    """Is a job bar listening to forwards here (worth estimating them)?"""
    return _ACTIVE.get() is not None


def report_forwards(n: int) -> None:
    """``n`` forwards were run (:class:`stl.core.localization.ForwardScheduler`)."""
    job = _ACTIVE.get()
    if job is not None:
        job.forwards(n)


def expect_forwards(n: float) -> None:
    """An STL call (:func:`stl.core.localization.localize_batch`) expects about ``n`` forwards."""
    job = _ACTIVE.get()
    if job is not None:
        job.expect(n)
