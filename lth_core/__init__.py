"""Lottery Ticket Explorer's engine: find winning tickets by iterative magnitude pruning.

    from lth_core import ExperimentConfig, run_experiment, collect
    result = collect(run_experiment(ExperimentConfig(rounds=3, controls=("reinit", "random"))))
    result.rounds_df()
"""
import os

# MKL's strict reproducible mode: a matmul's result then does not depend on how many threads computed
# it, and the engine changes its thread count with the machine's load (cpu.py). MKL reads this at its
# first call, so it is set before anything computes; a value the user set is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from lth_core.engine.cpu import keep_freed_memory  # noqa: E402

keep_freed_memory()  # before anything allocates: a small dataset's conv net then evaluates 2× faster

from lth_core.engine.config import ExperimentConfig  # noqa: E402
from lth_core.engine.errors import Cancelled, ConfigError, LTHError, TrainingFailed
from lth_core.engine.lottery import make_plan, run_experiment
from lth_core.engine.results import RunResult, collect, write_outputs
from lth_core.runs.store import RunStore, StoreError

__all__ = ["ExperimentConfig", "ConfigError", "LTHError", "TrainingFailed", "Cancelled",
           "run_experiment", "make_plan", "collect", "RunResult", "write_outputs", "RunStore", "StoreError", "jobs"]


def __getattr__(name: str):
    """`lth_core.jobs` (submit, cancel and resume runs in the background worker), imported when first used:
    its imports (the checks, statistics, scipy.special) cost a plain `python -m lth_core run` 0.1 s."""
    if name == "jobs":
        from lth_core.runs import jobs

        return jobs
    raise AttributeError(f"module 'lth_core' has no attribute {name!r}")
