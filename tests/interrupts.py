"""Send Ctrl-C (SIGINT) to a child process once it says it is ready, with a timeout."""

import os
import signal
import subprocess

#: Seconds a child may take to finish once interrupted.
TIMEOUT = 120


def interrupt_when_ready(argv, ready, stream="stderr"):
    """Run ``argv``, send SIGINT after the first line of ``stream`` for which ``ready(line)``
    is true, and return ``(returncode, stdout, stderr)``; a child still running after
    :data:`TIMEOUT` seconds is killed (and the test fails on its return code)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    try:
        for line in getattr(proc, stream):
            seen.append(line)
            if ready(line):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if stream == "stdout":
        out = "".join(seen) + out
    else:
        err = "".join(seen) + err
    return proc.returncode, out, err
