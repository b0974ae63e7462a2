"""Ray's processes end with the training process, even when it is killed with ``kill -9``.

A local Ray started by ``ray.init`` fate-shares its GCS and raylet with the
process that started it, and the workers follow the raylet within seconds. Its
two agents (dashboard and runtime env) do not: when the raylet dies unannounced
they report it to the GCS, which is gone too, and Ray 2.60 waits 60 s for that
(``publish_error_to_driver`` in ``ray/_private/utils.py``, a fixed timeout)
before they exit. A killed run would leave them behind for a minute.

So :func:`start` runs a reaper, a small process of its own session, beside each
local Ray: it notes every process the training process starts (Ray's processes
and theirs), and once the training process has gone, whether it finished or was
killed, it kills the ones that are still running. Run it as
``python -m hmarl.reaper PID``; it holds nothing but the list.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

POLL_SECONDS = 0.5


def start() -> subprocess.Popen:
    """A reaper for this process's children; it ends when this process does."""
    return subprocess.Popen(
        [sys.executable, "-m", "hmarl.reaper", str(psutil.Process().pid), str(time.time())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the terminal's process group: Ctrl-C is not for it
    )


def stop(reaper: subprocess.Popen) -> None:
    """End a reaper of a process that stays (the processes it noted are cleaned up)."""
    reaper.terminate()
    reaper.wait()


def watch(parent_pid: int, since: float) -> None:
    """Note ``parent_pid``'s descendants started after ``since`` until it ends; kill them."""
    noted: dict[int, float] = {}
    me = psutil.Process().pid
    try:
        parent = psutil.Process(parent_pid)
        while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
            for child in parent.children(recursive=True):
                if child.pid == me:
                    continue
                try:
                    created = child.create_time()
                except psutil.Error:
                    continue
                if created >= since - 1.0:
                    noted[child.pid] = created
            time.sleep(POLL_SECONDS)
    except psutil.Error:
        pass
    finally:
        reap(noted)


def reap(noted: dict[int, float]) -> None:
    """Kill the noted processes that still run (the same process: same start time)."""
    for pid, created in noted.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:
                process.kill()
        except psutil.Error:
            continue


if __name__ == "__main__":
    import signal

    # ``stop`` (SIGTERM) ends the watch early, and the noted processes are reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    watch(int(sys.argv[1]), float(sys.argv[2]))
