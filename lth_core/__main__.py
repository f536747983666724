import sys

from lth_core.cli import main

if __name__ == "__main__":  # a guard, so spawned helper processes do not rerun the CLI
    sys.exit(main())
