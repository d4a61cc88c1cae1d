"""Running a system's worker as a child process, as its users would run it.

Its output goes to a log file (a pipe nobody reads could fill and stall it).
Stopping sends SIGTERM, which every system here treats as "finish and exit",
then SIGKILL if it has not exited in time; only this child is signalled.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from bench.compare.systems import WorkerSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 30.0  # seconds for a graceful exit before SIGKILL
TAIL_LINES = 15


class WorkerDied(Exception):
    """The worker process exited while it was needed."""

    def __init__(self, returncode: int, log_tail: str) -> None:
        super().__init__(f"worker exited with code {returncode}: {log_tail}")
        self.returncode = returncode
        self.log_tail = log_tail


class WorkerProcess:
    """``with WorkerProcess(spec, log): ...`` runs the worker for the block."""

    def __init__(self, spec: WorkerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WorkerProcess:
        env = {**os.environ, **self.spec.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                list(self.spec.argv),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise :class:`WorkerDied` if the worker has exited."""
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise WorkerDied(code, self.log_tail())

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in lines[-TAIL_LINES:]) or "(empty log)"


def wait_until(
    done: Callable[[], tuple[bool, object]],
    *,
    worker: WorkerProcess,
    stall_timeout: float,
    what: str,
    interval: float = 0.1,
) -> None:
    """Poll ``done()`` (returning (finished, progress)) until finished.

    Fails if the worker dies or ``progress`` has not changed for
    ``stall_timeout`` seconds, so a slow system is waited for but a stuck one
    is not.
    """
    last_progress: object = None
    last_change = time.monotonic()
    while True:
        finished, progress = done()
        if finished:
            return
        worker.check_alive()
        now = time.monotonic()
        if progress != last_progress:
            last_progress, last_change = progress, now
        elif now - last_change > stall_timeout:
            raise TimeoutError(
                f"no progress for {stall_timeout:.0f} s while {what} "
                f"(at {progress}); worker log: {worker.log_tail()}"
            )
        time.sleep(interval)
