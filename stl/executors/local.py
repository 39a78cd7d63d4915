"""The default executor: every chunk in this process, one after the other."""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence

from . import ChunkResult, Executor, is_spec, label_error, method_info
from ..models.base import set_threads


class LocalExecutor(Executor):
    """Runs the method in the calling process (no start-up cost; what ``stl run`` did before
    executors existed). A :class:`~stl.executors.MethodSpec` is built here, its classifier
    shared by the specs of one executor.

    ``threads``: limit torch / OpenCV to this many threads (default: their own default,
    all cores). fp32 results are bit-identical to a Ray run only with the same thread
    count as each Ray worker: torch's CPU kernels split their sums by thread.
    """

    name = "local"
    builds_locally = True

    def __init__(self, threads: Optional[int] = None):
        self.method = None
        self.threads = threads
        self._classifiers: dict = {}

    def start(self, method, method_name: Optional[str] = None, model=None) -> dict:
        self.method = method.build(self._classifiers) if is_spec(method) else method
        if self.threads:
            set_threads(self.threads)
        return method_info(self.method, method_name, model)

    def check_labels(self, record) -> Optional[str]:
        return label_error(self.method, record)

    def imap(self, dataset, chunks: Sequence[Sequence[str]], max_windows: int,
             on_entry: Optional[Callable[[tuple], None]] = None) -> Iterator[ChunkResult]:
        """Each chunk in this process; ``on_entry`` gets every image the moment it is finished."""
        from .compute import compute_chunk as _compute_chunk

        for chunk in chunks:
            yield _compute_chunk(dataset, self.method, chunk, max_windows, on_entry=on_entry)

    def describe(self) -> str:
        return "local (this process" + (f", {self.threads} threads)" if self.threads else ")")

    def close(self) -> None:
        self.method = None
