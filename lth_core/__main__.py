import gc
import sys

from lth_core.cli import main

if __name__ == "__main__":  # a guard, so spawned helper processes do not rerun the CLI
    # Everything imported so far (PyTorch, pandas: some 200,000 objects) lives until the process ends. Frozen,
    # Python's collector stops walking it on every full collection during a run, and again in the teardown
    # at exit: together about 1 s of a reference run on 2 cores (`python -m lth_core bench`).
    gc.freeze()
    code = main()  # not frozen again: what the command made (the store's connection) is collected and closed,
    sys.exit(code)  # so SQLite checkpoints and removes its write-ahead log at exit
