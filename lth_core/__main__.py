import atexit
import gc
import os
import sys
import threading

from lth_core import cli

if __name__ == "__main__":  # a guard, so spawned helper processes do not rerun the CLI
    # Everything imported so far (PyTorch, pandas: some 200,000 objects) lives until the process ends. Frozen,
    # Python's collector stops walking it on every full collection during a run, and again in the teardown
    # at exit: together about 1 s of a reference run on 2 cores (`python -m lth_core bench`).
    gc.freeze()
    code = cli.main()  # not frozen again: what the command made (the store's connection) is collected and closed,
    if cli.nothing_left_open and threading.active_count() == 1:  # except where the command closed all it made:
        # then Python's teardown (PyTorch's and pandas' objects destroyed one by one, 0.2-0.3 s on 2 cores) has
        # nothing to save. The output is flushed and the exit handlers (atexit) run, as at a normal exit.
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)  # so SQLite checkpoints and removes its write-ahead log at exit
