"""Scale-out on Ray: the runner's chunks on Ray actors, on this machine or a cluster.

Design (docs/scale.md):

* **workers are actors** -- each builds the method (and its classifier) once from a
  picklable :class:`~stl.executors.MethodSpec` and keeps it; it reserves
  ``threads_per_worker`` CPUs and ``gpus_per_worker`` GPUs, so Ray places as many
  as the machine or the cluster holds.
* **chunks are tasks** -- the runner's chunks (the same chunks as ``--executor
  local``, so STL shares classifier batches across the same images and the stored
  windows are the same) are submitted to the least busy worker, at most
  ``inflight_per_worker`` at a time per worker, and come back in completion order
  (``ray.wait``); the runner, the only writer of the store, commits each image as
  it arrives.
* **faults** -- a worker that dies (killed, out of memory, its node lost: Ray's
  ``RayActorError`` / ``WorkerCrashedError`` / ``NodeDiedError`` / ...) is replaced
  by a new actor; the chunk it was computing is tried again (the chunks queued
  behind it go back to the queue untouched). A chunk that kills its worker twice
  is split into single images; an image that has killed its worker more than
  ``max_retries`` times is recorded as failed (error ``WorkerDied``) and the run
  goes on. A worker whose method cannot be built at all stops the run with
  :class:`stl.runner.RunError`.
* **images are read by the workers** from the records' paths: on a cluster the
  dataset root must be at the same path on every node (shared or copied).
"""
from __future__ import annotations

import collections
import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Sequence

from . import DEFAULT_MAX_RETRIES, ChunkResult, Executor, is_spec, label_error, method_info
from ..models.base import set_threads

log = logging.getLogger(__name__)

#: how long ray.wait blocks before the loop looks again (Ctrl-C is served in between)
POLL_S = 0.5
#: how long ``--address host:port`` may take to accept a TCP connection before the run is refused
#: (``ray.init`` itself retries an unreachable address for minutes)
CONNECT_TIMEOUT_S = 10.0
#: how often the driver checks that Ray is still there while it waits (a local instance whose raylet
#: died -- e.g. its DashboardAgent was killed by the OOM killer -- never answers again); the run ends
#: with :class:`stl.runner.RunError` within about this many seconds (plus :data:`HEALTH_TIMEOUT_S`)
HEALTH_S = 10.0
#: how long the cluster's GCS may take to answer the health check
HEALTH_TIMEOUT_S = 20.0


def check_reachable(address: Optional[str], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a ``--address`` (``host:port`` or ``ray://host:port``) that accepts no TCP connection
    within ``timeout`` seconds, with :class:`stl.errors.OptionError` (``auto`` and the like are
    left to Ray, which fails fast when no cluster runs on this node)."""
    from ..errors import OptionError

    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # not host:port; Ray decides
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError, OverflowError) as e:
        raise OptionError(f"--address {address}: no Ray cluster answers there ({type(e).__name__}: {e}); start "
                          f"one with `ray start --head` or give the address it prints") from None


def ray_down(ask_gcs: bool = True) -> Optional[str]:
    """Why the Ray instance this process is connected to is gone, or None if it looks alive: a
    process of a local instance this driver started (raylet, GCS) has exited, or (``ask_gcs``; not
    for Ray Client ``ray://`` connections) the cluster's GCS does not answer within
    :data:`HEALTH_TIMEOUT_S` or lists this node as dead."""
    import threading

    import ray

    node = getattr(getattr(ray, "_private", None) and ray._private.worker, "_global_node", None)
    for kind in ("raylet", "gcs_server"):
        for info in (getattr(node, "all_processes", None) or {}).get(kind, []):
            rc = info.process.poll() if getattr(info, "process", None) is not None else None
            if rc is not None:
                return f"its {kind} process exited (code {rc}; killed, out of memory, or its DashboardAgent died)"
    if not ask_gcs:
        return None
    answer: list = []

    def ask():
        try:
            nodes = ray.nodes()
        except Exception as e:  # the GCS is gone
            answer.append(e)
            return
        try:
            me = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - no node of our own to look up: the GCS answered
            answer.append(True)
            return
        answer.append(next((n.get("Alive", True) for n in nodes if n.get("NodeID") == me), True))

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(HEALTH_TIMEOUT_S)
    if not answer:
        return f"the cluster's GCS did not answer within {HEALTH_TIMEOUT_S:g} s"
    if isinstance(answer[0], Exception):
        return f"the cluster's GCS cannot be reached ({_first_line(answer[0])})"
    return None if answer[0] else "the cluster lists this node as dead"


# ----------------------------------------------------------------------------- the actor
class _Records:
    """The records of one chunk, with the ``record(id)`` lookup the runner's chunk code uses."""

    def __init__(self, records):
        self._by_id = {r.image_id: r for r in records}

    def record(self, image_id):
        return self._by_id[image_id]


class Worker:
    """One worker (made a Ray actor by :class:`RayExecutor`): builds the method once, computes chunks."""

    def __init__(self, method, threads: int = 1):
        set_threads(threads)
        self.method = method.build() if is_spec(method) else method
        set_threads(threads)  # the build may have imported torch / cv2
        self.threads = threads

    def where(self):
        """(pid, host, visible GPUs) of this worker process."""
        return os.getpid(), socket.gethostname(), os.environ.get("CUDA_VISIBLE_DEVICES", "")

    def info(self, method_name=None, model=None) -> dict:
        return method_info(self.method, method_name, model)

    def check_labels(self, record):
        return label_error(self.method, record)

    def compute(self, records, max_windows: int) -> ChunkResult:
        from .compute import compute_chunk as _compute_chunk

        return _compute_chunk(_Records(records), self.method, [r.image_id for r in records], max_windows)


def worker_device(device: str, gpus_per_worker: float) -> str:
    """The classifier device a Ray worker gets for the requested ``device``.

    Ray makes only the GPUs a worker reserved visible to it (``CUDA_VISIBLE_DEVICES``): with
    ``gpus_per_worker`` > 0 the classifier runs on ``"cuda"`` (the worker's GPU, whatever
    ``cuda:N`` was asked: device N may not exist inside the worker); without a reservation Ray
    hides every GPU (``CUDA_VISIBLE_DEVICES=""``), so a CUDA device is refused here with what to
    do instead of failing in every worker.
    """
    dev = str(device)
    on_gpu = dev.startswith("cuda") or dev == "gpu"
    if gpus_per_worker > 0:
        return "cuda"
    if on_gpu:
        from ..store import RunError

        raise RunError(f"--device {dev} with --executor ray needs --gpus-per-worker (e.g. 1, or 0.5 to put two "
                       f"workers on a GPU): Ray hides the GPUs from workers that reserve none")
    return dev


# ----------------------------------------------------------------------------- the driver
@dataclass
class _Task:
    ids: List[str]
    seq: int = 0


@dataclass
class _Slot:
    index: int
    handle: object = None
    where_ref: object = None
    where: Optional[tuple] = None
    refs: List[object] = field(default_factory=list)  # in submission order (= execution order)
    restarts: int = 0


def _lost_errors():
    """Ray's exceptions for a worker (or its node) gone while computing."""
    from ray import exceptions as rx

    names = ("RayActorError", "WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError",
             "LocalRayletDiedError", "TaskCancelledError")
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def _first_line(err) -> str:
    """The error in one line: its first line and, for Ray's multi-line reports, the last (the cause)."""
    text = [t.strip() for t in str(err).strip().splitlines() if t.strip()]
    msg = text[0] if text else ""
    if len(text) > 1 and text[-1] != msg:
        msg += " ... " + text[-1][:160]
    return f"{type(err).__name__}: {msg}"


class RayExecutor(Executor):
    """Chunks of images on Ray actors (see the module docstring).

    ``address``: a running cluster (``"auto"``, ``"ray://..."``, ``"host:6379"``); None
    starts a local Ray instance with ``num_cpus`` (default ``workers x
    threads_per_worker``, else all CPUs) that lives until :meth:`shutdown` / exit.
    If Ray is already initialised in this process (tests), it is used as is.
    """

    name = "ray"
    builds_locally = False

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, gpus_per_worker: float = 0.0,
                 threads_per_worker: int = 1, max_retries: int = DEFAULT_MAX_RETRIES, inflight_per_worker: int = 2,
                 log_to_driver: bool = False, num_cpus: Optional[int] = None, init_kwargs: Optional[dict] = None):
        from ..errors import OptionError

        if workers is not None and workers < 1:
            raise OptionError(f"--workers must be >= 1, not {workers}")
        if threads_per_worker < 1:
            raise OptionError(f"--threads-per-worker must be >= 1, not {threads_per_worker}")
        if not 0 <= gpus_per_worker < float("inf"):  # NaN fails too
            raise OptionError(f"--gpus-per-worker must be a number >= 0, not {gpus_per_worker}")
        if max_retries < 0 or inflight_per_worker < 1:
            raise OptionError(f"--max-retries must be >= 0 (not {max_retries}), inflight_per_worker >= 1 "
                              f"(not {inflight_per_worker})")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = float(gpus_per_worker)
        self.threads = int(threads_per_worker)
        self.max_retries = int(max_retries)
        self.inflight_per_worker = int(inflight_per_worker)
        self.log_to_driver = log_to_driver
        self.num_cpus = num_cpus
        self.init_kwargs = dict(init_kwargs or {})
        self._owns_ray = False
        #: why the Ray instance is gone (then nothing more is asked of it), or None
        self._down: Optional[str] = None
        self._checked = 0.0
        self._slots: List[_Slot] = []
        self._method = None
        #: workers replaced after dying (this method's run; reset by start())
        self.restarts = 0
        #: worker index -> chunks it returned (this method's run)
        self.chunks_done: collections.Counter = collections.Counter()
        #: image id -> times its worker died while computing it (this method's run)
        self.crashes: collections.Counter = collections.Counter()

    # -- Ray ---------------------------------------------------------------------------
    def _init_ray(self):
        import ray

        if ray.is_initialized():
            return
        t = time.time()
        self._down = None
        if self.address:
            check_reachable(self.address)
            ray.init(address=self.address, log_to_driver=self.log_to_driver, **self.init_kwargs)
        else:
            cpus = self.num_cpus or ((self.workers * self.threads) if self.workers and not self.gpus_per_worker
                                     else os.cpu_count() or 1)
            kw = dict(num_cpus=cpus, include_dashboard=False, log_to_driver=self.log_to_driver)
            kw.update(self.init_kwargs)
            ray.init(**kw)
        self._owns_ray = True
        log.info("Ray %s: %s in %.1f s", ray.__version__,
                 f"connected to {self.address}" if self.address else "started a local instance", time.time() - t)

    def _check_alive(self, force: bool = False) -> None:
        """Every :data:`HEALTH_S` seconds (or now): :class:`stl.runner.RunError` if Ray is gone."""
        if not force and time.time() - self._checked < HEALTH_S:
            return
        self._checked = time.time()
        why = ray_down(ask_gcs=not str(self.address or "").startswith("ray://"))
        if why:
            from ..store import RunError

            self._down = why
            raise RunError(f"the Ray instance stopped answering: {why}; the images finished so far are saved, "
                           f"rerun the same command to resume")

    def _num_workers(self) -> int:
        import ray

        res = ray.cluster_resources()
        cpus, gpus = res.get("CPU", 0.0), res.get("GPU", 0.0)
        if self.gpus_per_worker:
            fit = int(gpus // self.gpus_per_worker + 1e-9)
            if fit < 1:
                from ..store import RunError

                raise RunError(f"--gpus-per-worker {self.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
        else:
            fit = int(cpus // self.threads)
        n = self.workers or max(1, fit)
        if n > max(1, fit):
            log.warning("%d workers asked, the cluster holds %d now (CPU %g, GPU %g); the others wait for "
                        "resources", n, fit, cpus, gpus)
        return n

    def _new_actor(self, slot: _Slot):
        slot.handle = self._actor_cls.remote(self._method, self.threads)
        slot.where_ref = slot.handle.where.remote()
        slot.where = None
        slot.refs = []

    def _kill(self, slot: _Slot):
        import ray

        if slot.handle is not None and not self._down:
            try:
                ray.kill(slot.handle, no_restart=True)
            except Exception:  # already gone
                pass
        slot.handle = None

    # -- Executor ----------------------------------------------------------------------
    def start(self, method, method_name: Optional[str] = None, model=None) -> dict:
        import ray

        if is_spec(method) and method.uses_classifier:
            device = worker_device(method.device, self.gpus_per_worker)  # before Ray starts: a bad request fails fast
            if device != str(method.device):
                log.info("--gpus-per-worker %g: the classifier runs on %s (the worker's GPU; asked: %s)",
                         self.gpus_per_worker, device, method.device)
                method = replace(method, device=device)
        self._init_ray()
        self._method = method
        self.restarts = 0
        self.chunks_done.clear()
        self.crashes.clear()
        self._actor_cls = ray.remote(num_cpus=self.threads, num_gpus=self.gpus_per_worker, max_restarts=0,
                                     max_task_retries=0)(Worker)
        self._slots = [_Slot(k) for k in range(self._num_workers())]
        for s in self._slots:
            self._new_actor(s)
        t = time.time()
        first = self._wait_first_worker()
        log.info("%s; first worker up in %.1f s (pid %s on %s)", self.describe(), time.time() - t, *first.where[:2])
        return self._get(first.handle.info.remote(method_name, model))

    def _wait_first_worker(self) -> _Slot:
        """The first worker that has built its method; RunError if a worker cannot build it."""
        import ray

        pending = {s.where_ref: s for s in self._slots}
        t0, told = time.time(), 0.0
        while True:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S * 4)
            for ref in ready:
                s = pending.pop(ref)
                s.where = self._get(ref)
                return s
            self._check_alive()
            if time.time() - t0 > told + 60:
                told = time.time() - t0
                log.warning("no Ray worker up after %.0f s (cluster resources: %s)", told, ray.available_resources())

    def _get(self, ref):
        """ray.get, turning a worker whose method cannot be built into RunError."""
        import ray
        from ray.exceptions import RayActorError

        try:
            return ray.get(ref)
        except RayActorError as e:
            if getattr(e, "actor_init_failed", False):
                from ..store import RunError

                raise RunError(f"a Ray worker could not build the method: {e}") from None
            raise

    def check_labels(self, record) -> Optional[str]:
        return self._get(self._slots[0].handle.check_labels.remote(record)) if self._slots else None

    def worker_pids(self, timeout: float = 0.0) -> Dict[int, int]:
        """{worker index: pid} of the workers that are up (from each actor's ``where()``)."""
        import ray

        out = {}
        for s in self._slots:
            if s.where is None and s.where_ref is not None:
                ready, _ = ray.wait([s.where_ref], timeout=timeout)
                if ready:
                    try:
                        s.where = ray.get(s.where_ref)
                    except Exception:
                        continue
            if s.where is not None:
                out[s.index] = s.where[0]
        return out

    def _where(self, slot: _Slot) -> str:
        self.worker_pids()
        w = slot.where
        return f"worker {slot.index}" + (f" (pid {w[0]} on {w[1]})" if w else "")

    def status(self) -> str:
        return f"{len(self._slots)} workers" + (f", {self.restarts} restarted" if self.restarts else "")

    def describe(self) -> str:
        gpu = f", {self.gpus_per_worker:g} GPU" if self.gpus_per_worker else ""
        where = f"cluster {self.address}" if self.address else "local Ray instance"
        return f"ray ({len(self._slots) or self.workers or '?'} workers x {self.threads} threads{gpu}, {where})"

    def imap(self, dataset, chunks: Sequence[Sequence[str]], max_windows: int,
             on_entry=None) -> Iterator[ChunkResult]:
        """The chunks on the workers, in completion order. ``on_entry`` is not used: a worker's
        images come back with its chunk (a run interrupted or killed loses at most the chunks
        in flight, not the ones returned)."""
        import ray

        lost = _lost_errors()
        queue = collections.deque(_Task(list(c), k) for k, c in enumerate(chunks))
        inflight: Dict[object, tuple] = {}  # ref -> (slot, task)
        while queue or inflight:
            # submit: the least busy worker first, at most inflight_per_worker each
            while queue:
                slot = min(self._slots, key=lambda s: (len(s.refs), s.index))
                if len(slot.refs) >= self.inflight_per_worker:
                    break
                task = queue.popleft()
                records, fails = [], {}
                for i in task.ids:
                    try:
                        records.append(dataset.record(i))
                    except Exception as e:  # unknown id, bad annotation: as the local runner does
                        fails[i] = (type(e).__name__, str(e))
                if fails:
                    yield [], fails
                if not records:
                    continue
                ref = slot.handle.compute.remote(records, max_windows)
                slot.refs.append(ref)
                inflight[ref] = (slot, task)
            if not inflight:
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
            if not ready:
                self._check_alive()
            for ref in ready:
                if ref not in inflight:  # handled with its worker's other tasks
                    continue
                slot, task = inflight[ref]
                try:
                    result = ray.get(ref)
                except lost as e:
                    yield from self._worker_lost(slot, e, inflight, queue)
                    continue
                except ray.exceptions.RayTaskError as e:  # the chunk code itself raised (not the method)
                    inflight.pop(ref)
                    slot.refs.remove(ref)
                    yield from self._blame(task, e, slot, queue)
                    continue
                inflight.pop(ref)
                slot.refs.remove(ref)
                self.chunks_done[slot.index] += 1
                yield self._report(result, slot)

    def _report(self, result: ChunkResult, slot: _Slot) -> ChunkResult:
        entries, fails = result
        for i, (err, msg) in fails.items():
            log.warning("%s: image %s failed: %s: %s", self._where(slot), i, err, msg)
        return entries, fails

    def _worker_lost(self, slot: _Slot, err, inflight, queue) -> Iterator[ChunkResult]:
        """A worker died: keep what it finished, blame the task it was running, requeue the
        rest, replace it by a new actor."""
        import ray

        from ray.exceptions import RayActorError

        if isinstance(err, RayActorError) and getattr(err, "actor_init_failed", False):
            from ..store import RunError

            raise RunError(f"a Ray worker could not build the method: {err}")
        where = self._where(slot)
        blamed, requeue = None, []
        for ref in list(slot.refs):  # execution order
            _, task = inflight.pop(ref)
            if blamed is None:
                done, _ = ray.wait([ref], timeout=0)
                if done:
                    try:
                        yield self._report(ray.get(ref), slot)
                        continue
                    except Exception:
                        pass
                blamed = task
            else:
                requeue.append(task)
        queue.extendleft(reversed(requeue))
        self._kill(slot)
        slot.restarts += 1
        self.restarts += 1
        self._new_actor(slot)
        log.warning("%s died (%s); a new worker replaces it%s", where, _first_line(err),
                    f"; {len(requeue)} queued chunk(s) resubmitted" if requeue else "")
        if blamed is not None:
            yield from self._blame(blamed, err, None, queue)

    def _blame(self, task: _Task, err, slot: Optional[_Slot], queue) -> Iterator[ChunkResult]:
        """Count a death (or a chunk-level error) against the images of ``task``: retry the
        chunk, split it into single images, or record the image as failed."""
        for i in task.ids:
            self.crashes[i] += 1
        n = max(self.crashes[i] for i in task.ids)
        what = _first_line(err)
        if len(task.ids) > 1:
            if n >= 2 or n > self.max_retries:
                log.warning("chunk [%s] lost its worker %d times; retrying its images one by one",
                            ", ".join(task.ids), n)
                queue.extendleft(reversed([_Task([i], task.seq) for i in task.ids]))
            else:
                log.warning("chunk [%s] retried (%s)", ", ".join(task.ids), what)
                queue.appendleft(task)
            return
        i = task.ids[0]
        if self.crashes[i] > self.max_retries:
            msg = f"its worker died {self.crashes[i]} times computing it (last: {what})"
            log.error("image %s failed: %s", i, msg)
            yield [], {i: ("WorkerDied", msg)}
        else:
            log.warning("image %s retried (attempt %d of %d; %s)", i, self.crashes[i] + 1, self.max_retries + 1,
                        what)
            queue.appendleft(task)

    def close(self) -> None:
        for s in self._slots:
            self._kill(s)
        self._slots = []
        self._method = None

    def shutdown(self) -> None:
        import ray

        self.close()
        if self._owns_ray and ray.is_initialized() and not self._down:
            ray.shutdown()
        self._owns_ray = False
