#!/usr/bin/env python3
"""Runs one command and prints its wall time in microseconds and its peak
resident memory in KiB, as "wall_us peak_kb".

    python3 benches/measure.py DIR OUT CMD [ARG...]

CMD runs in DIR with stdout and stderr going to the file OUT. The clock
starts just before the process is spawned and stops when it has been
reaped; peak memory is the child's ru_maxrss, as GNU time reports it. The
point is to time the command and not the shell around it: timing a
10-millisecond command with `date` around a subshell that runs
/usr/bin/time adds 2 to 3 milliseconds of process starts to it. Exits
with the command's status when that is not 0.
"""

import os
import sys
import time


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    folder, out, *command = sys.argv[1:]
    os.chdir(folder)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    actions = [
        (os.POSIX_SPAWN_DUP2, fd, 1),
        (os.POSIX_SPAWN_DUP2, fd, 2),
    ]
    started = time.perf_counter_ns()
    pid = os.posix_spawnp(command[0], command, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    ended = time.perf_counter_ns()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return code if code > 0 else 128 - code
    print((ended - started) // 1000, usage.ru_maxrss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
