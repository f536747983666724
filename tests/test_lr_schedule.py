"""Learning-rate schedules and learning-rate rewinding (Renda et al. 2020): the rates each step gets,
and what `lr-rewind` does against fine-tuning (`reset none`) on real training."""

import pandas as pd
import pytest

from lth_core import ConfigError, ExperimentConfig, collect, run_experiment
from lth_core.engine.training import COSINE_FLOOR, TrainSettings

TINY = dict(dataset="digits", arch="mlp", hidden=(32,), rounds=2, iterations=40, batch_size=32, seed=3)


def settings(schedule: str, warmup: int = 0, fine_tune: bool = False) -> TrainSettings:
    return TrainSettings("adam", 0.01, 0.9, 0.0, 32, 100, 10, schedule, warmup, fine_tune)


def test_each_schedule_gives_each_step_its_rate():
    assert {settings("constant").lr_at(s) for s in range(1, 101)} == {0.01}
    step = settings("step")
    assert [step.lr_at(s) for s in (1, 50, 51, 75, 76, 100)] == pytest.approx([0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4])
    cosine = settings("cosine")
    assert cosine.lr_at(1) == pytest.approx(0.01)
    assert cosine.lr_at(51) == pytest.approx(0.01 * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5))
    assert all(cosine.lr_at(s) > cosine.lr_at(s + 1) for s in range(1, 100))
    warm = settings("cosine", warmup=10)
    assert warm.lr_at(1) == pytest.approx(cosine.lr_at(1) / 10) and warm.lr_at(10) == pytest.approx(cosine.lr_at(10))
    assert warm.lr_at(11) == cosine.lr_at(11)


def test_fine_tuning_trains_at_the_schedules_final_rate():
    assert settings("step", fine_tune=True).lr_at(1) == pytest.approx(1e-4)
    assert settings("cosine", fine_tune=True).lr_at(1) == pytest.approx(0.01 * COSINE_FLOOR)
    assert settings("constant", fine_tune=True).lr_at(7) == 0.01


def rounds(**changes) -> pd.DataFrame:
    table = collect(run_experiment(ExperimentConfig(**{**TINY, **changes}))).rounds_df()
    return table.drop(columns=["train_seconds", "eval_seconds"])


def test_lr_rewind_with_a_constant_schedule_is_fine_tuning_bit_for_bit():
    pd.testing.assert_frame_equal(rounds(reset="lr-rewind"), rounds(reset="none"))


def test_with_a_decaying_schedule_lr_rewind_replays_it_and_fine_tuning_does_not():
    rewound, tuned = rounds(reset="lr-rewind", lr_schedule="step"), rounds(reset="none", lr_schedule="step")
    pd.testing.assert_frame_equal(rewound[rewound["round"] == 0], tuned[tuned["round"] == 0])  # round 0 is the same
    assert not rewound[rewound["round"] > 0]["test_accuracy"].equals(tuned[tuned["round"] > 0]["test_accuracy"])


def test_the_default_schedule_leaves_the_numbers_as_they_were():
    pd.testing.assert_frame_equal(rounds(), rounds(lr_schedule="constant", warmup=0))


@pytest.mark.parametrize("changes, field", [
    ({"lr_schedule": "linear"}, "lr_schedule"), ({"warmup": -1}, "warmup"), ({"warmup": 1.5}, "warmup"),
    ({"reset": "lr_rewind"}, "reset"),
])
def test_bad_schedule_settings_name_their_field(changes, field):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(changes)
    assert err.value.field == field


def test_a_warmup_as_long_as_the_round_is_refused_before_training():
    with pytest.raises(ConfigError) as err:
        collect(run_experiment(ExperimentConfig(**{**TINY, "warmup": 40})))
    assert err.value.field == "warmup" and "40 iterations" in err.value.message
