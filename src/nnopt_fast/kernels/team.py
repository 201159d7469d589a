"""The thread team of the compiled epochs: plain threads, fork-safe, interruptible by Ctrl-C.

A threaded epoch runs its workers on threads started for that epoch (no pool outlives
it, so a forked child has nothing to inherit and starts its own, and concurrent fits
never share one). The compiled workers release the GIL; the calling thread waits for
them. A Ctrl-C while it waits raises the stop flag, which every compiled epoch polls
once per batch: the workers finish their batch and return, and ``KeyboardInterrupt``
is raised in the caller. Long serial epochs run the same way, on a team of one, so
that they can be interrupted too.

The stop flag is an int32 array of two entries: ``stop[0] = 1`` asks the epoch to end
after the current batch; ``stop[1] = 1`` aborts it at once (a barrier releases its
waiters), for when a worker could not start or failed.
"""

import contextlib
import signal
import threading

import numpy as np

__all__ = ["LONG_EPOCH_WORK", "new_stop_flag", "run_team", "run_serial"]

#: Serial epochs of at least this many multiply-adds (samples x weights) run on a team of
#: one so that Ctrl-C can stop them; shorter ones (a few to a few hundred milliseconds,
#: depending on the layer shapes) run in the calling thread, without the ~50 us of
#: starting a thread.
LONG_EPOCH_WORK = 1 << 27


def new_stop_flag():
    """A cleared stop flag: ``int32[2]``, (stop after this batch, abort now)."""
    return np.zeros(2, dtype=np.int32)


def run_team(worker, n_threads, stop):
    """Run ``worker(tid)`` for ``tid = 0 .. n_threads - 1``, each on a thread of its own.

    Returns when all have returned. If a worker raises, the team is aborted
    (``stop[1] = 1``) and the first exception is raised here once all are done. A
    ``KeyboardInterrupt`` while waiting sets ``stop[0]`` (a second one ``stop[1]``),
    waits for the workers, and is raised again.

    Parameters
    ----------
    worker : callable
        ``worker(tid)``; it must return soon after ``stop`` is raised.
    n_threads : int >= 1
    stop : ndarray of int32, shape (2,)
        The flag the compiled workers poll.
    """
    errors = []
    done = []

    def run(tid):
        try:
            worker(tid)
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
            stop[1] = 1
        finally:
            done[tid].set()

    threads = []
    with _sigint_held() as pending:
        try:
            for tid in range(n_threads):
                done.append(threading.Event())
                t = threading.Thread(target=run, args=(tid,),
                                     name=f"nnopt_fast-worker-{tid}", daemon=True)
                t.start()
                threads.append(t)
        except BaseException:
            # A worker that could not start would leave the others waiting at a barrier.
            stop[1] = 1
            _wait(done[:len(threads)], stop)
            raise
    if pending:  # Ctrl-C while the workers started: as if pressed while they run
        stop[0] = 1
    interrupted = _wait(done, stop) or bool(pending)
    for t in threads:
        t.join()
    if interrupted:
        raise KeyboardInterrupt
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _sigint_held():
    """Hold back Ctrl-C while the workers start (main thread, Python's default handler
    only): yields a list that records it instead. Raised inside ``Thread.start``, a
    KeyboardInterrupt would leave a thread that already runs unwaited for, and the caller
    would restore weights that it still writes (seen in CI)."""
    pending = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield pending
        return
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _wait(done, stop):
    """Wait until every worker has set its event; True if Ctrl-C was pressed meanwhile
    (which raised ``stop``).

    Events, not ``Thread.join``: a join interrupted by Ctrl-C can mark a thread finished
    while it still runs (CPython's threading before 3.13), and the caller would then
    restore weights that the worker is still writing.
    """
    interrupted = False
    for event in done:
        while True:
            try:
                event.wait()
                break
            except KeyboardInterrupt:
                # First Ctrl-C: finish the batch; a second one: abort now.
                stop[1 if interrupted else 0] = 1
                interrupted = True
    return interrupted


def run_serial(call, work, stop):
    """``call()``, on a team of one when it is long and this is the main thread.

    Parameters
    ----------
    call : callable
        The compiled serial epoch, polling ``stop`` between batches; its return value
        is returned.
    work : int
        Its multiply-adds (compare :data:`LONG_EPOCH_WORK`).
    stop : ndarray of int32, shape (2,)
    """
    if work < LONG_EPOCH_WORK or threading.current_thread() is not threading.main_thread():
        return call()
    result = []
    run_team(lambda tid: result.append(call()), 1, stop)
    return result[0]
