"""KerasTuner's tuners, handing each trial's id to the HyperModel.

The three tuners of ``--tuner`` are KerasTuner's own; the only addition is
that ``run_trial`` passes the trial id to ``MultVAEHyperModel.fit``, which
names the trial's TensorBoard run after it.
"""

from __future__ import annotations

import keras_tuner as kt

from tuning import hypermodel as hm

PROJECT = "trials"  # KerasTuner's project directory inside --out


class _TrialIds:
    def run_trial(self, trial, *args, **kwargs):
        kwargs["trial_id"] = trial.trial_id
        return super().run_trial(trial, *args, **kwargs)


class RandomSearch(_TrialIds, kt.RandomSearch):
    """``keras_tuner.RandomSearch``, logging each trial under its id."""


class BayesianOptimization(_TrialIds, kt.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` (Gaussian process, UCB)."""


class Hyperband(_TrialIds, kt.Hyperband):
    """``keras_tuner.Hyperband``: successive halving of the epochs."""


TUNERS = {
    "bayesian": BayesianOptimization,
    "hyperband": Hyperband,
    "random": RandomSearch,
}


def make_tuner(
    name: str,
    hypermodel: hm.MultVAEHyperModel,
    max_trials: int,
    out: str,
) -> kt.Tuner:
    """The tuner ``name`` over ``hypermodel``, keeping its state in ``out``.

    An existing project in ``out`` is reloaded (the search continues).
    Hyperband runs at most ``max_trials`` trials of its own schedule, whose
    longest trains the config's epochs.
    """
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(hm.OBJECTIVE, direction="max"),
        seed=hypermodel.base.train.seed,
        directory=out,
        project_name=PROJECT,
        overwrite=False,  # starting over is search.prepare_out's business
    )
    if name == "hyperband":
        tuner = Hyperband(
            max_epochs=hypermodel.base.train.epochs, factor=3, **common
        )
        tuner.oracle.max_trials = max_trials
        return tuner
    return TUNERS[name](max_trials=max_trials, **common)
