"""Stopping cleanly on SIGTERM / SIGUSR1 / SIGUSR2 (what SLURM and submitit send before pre-emption or the
time limit).

The handler only records the signal; the training loop finishes the step it is in and stops (under DDP all
ranks stop at the same step). The run's ``checkpoints/last.pt`` then holds the last completed epoch - written
atomically at the end of that epoch - so a resumed run continues exactly as an uninterrupted one would. At
last :meth:`StopRequest.hand_over` passes the signal on to whoever handled it before (submitit's handler
checkpoints and requeues the job) or exits with status ``128 + signal``.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name))


class StopRequest:
    """Set by a signal; read by the training loop between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            print(f"\nreceived {signal.Signals(signum).name}: finishing the current step, then stopping "
                  "(checkpoints/last.pt keeps the last completed epoch)", file=sys.stderr, flush=True)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def hand_over(self) -> None:
        """After the run has stopped cleanly: the previous handler of the signal (e.g. submitit's requeue),
        then exit with status 128 + signal."""
        previous = self._previous.get(self.signum)
        self.restore()
        if callable(previous):
            previous(self.signum, None)
        raise SystemExit(128 + int(self.signum))


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the duration of a run; the previous ones come back afterwards."""
    request = StopRequest()
    request.install()
    try:
        yield request
    finally:
        request.restore()
