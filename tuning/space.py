"""What a search varies: the search space and how a trial's values apply.

A :class:`SearchSpace` names, per hyperparameter, a range or choices (or
None: the preset's value); :func:`apply` puts a trial's values into the
preset's :class:`~tf_multvae.config.RunConfig`. Hyperparameters are named
like the config fields they set (``hidden_width`` sets every hidden
layer's width). Imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tf_multvae import config as cfg

# Hyperparameter -> the search flag that sets its range or choices. The
# names are the config fields they set (hidden_width: every hidden layer).
FLAGS = {
    **{
        name: cfg.flag(name)
        for name in (
            "dropout",
            "anneal_cap",
            "latent_dim",
            "learning_rate",
            "total_anneal_steps",
        )
    },
    "hidden_width": "--hidden-width",
}
RANGES = ("dropout", "anneal_cap", "learning_rate")  # (min, max) floats
VAE_ONLY = ("anneal_cap", "total_anneal_steps")
# Hyperparameters that are ModelConfig fields of the same name.
_MODEL_FIELDS = ("dropout", "anneal_cap", "latent_dim", "total_anneal_steps")
# The config field a hyperparameter sets, where the names differ.
CONFIG_FIELDS = {"hidden_width": "hidden_dims"}


@dataclass(frozen=True)
class SearchSpace:
    """What a search varies; None keeps the preset's value.

    Attributes:
        dropout: (min, max) of the input dropout rate, uniform.
        anneal_cap: (min, max) of β_cap, uniform (Mult-VAE only).
        latent_dim: sizes of z (or of the DAE's code) to choose from.
        learning_rate: (min, max) of Adam's step size, log-uniform.
        total_anneal_steps: updates over which β would reach 1, choices
            (Mult-VAE only).
        hidden_width: widths of the hidden layers, choices; every hidden
            layer of the preset gets the width (a preset without one, the
            DAE's, gets one layer).
    """

    dropout: tuple[float, float] | None = (0.0, 0.8)
    anneal_cap: tuple[float, float] | None = (0.0, 1.0)
    latent_dim: tuple[int, ...] | None = (50, 100, 200, 400)
    learning_rate: tuple[float, float] | None = None
    total_anneal_steps: tuple[int, ...] | None = None
    hidden_width: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in FLAGS:
            values = getattr(self, name)
            if values is None:
                continue
            if len(values) == 0:
                raise ValueError(f"{FLAGS[name]} is empty")
            if name in RANGES and (len(values) != 2 or values[0] > values[1]):
                raise ValueError(
                    f"{FLAGS[name]} takes MIN,MAX with MIN <= MAX, "
                    f"not {','.join(map(str, values))}"
                )
        _check(self.dropout, "dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        _check(self.anneal_cap, "anneal_cap", lambda v: v >= 0, ">= 0")
        _check(self.learning_rate, "learning_rate", lambda v: v > 0, "> 0")
        _check(self.latent_dim, "latent_dim", lambda v: v >= 1, ">= 1")
        _check(self.hidden_width, "hidden_width", lambda v: v >= 1, ">= 1")
        _check(
            self.total_anneal_steps,
            "total_anneal_steps",
            lambda v: v >= 0,
            ">= 0",
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The hyperparameters searched, in :data:`FLAGS` order."""
        return tuple(n for n in FLAGS if getattr(self, n) is not None)

    def for_model(self, kind: str) -> "SearchSpace":
        """This space without what ``kind`` lacks (the DAE has no β).

        Raises:
            ValueError: a Mult-VAE-only value other than the default was
                asked of the DAE.
        """
        if kind == "vae":
            return self
        for name in VAE_ONLY:
            value = getattr(self, name)
            if value is not None and value != getattr(SearchSpace, name):
                raise ValueError(f"{FLAGS[name]} applies to --model vae only")
        return dataclasses.replace(
            self, anneal_cap=None, total_anneal_steps=None
        )


def _check(values, name, ok, rule):
    for value in values or ():
        if not ok(value):
            raise ValueError(
                f"{FLAGS[name]} values must be {rule}, got {value}"
            )


def apply(base: cfg.RunConfig, values: dict) -> cfg.RunConfig:
    """``base`` with hyperparameter values (named as in :data:`FLAGS`) in."""
    model = {k: v for k, v in values.items() if k in _MODEL_FIELDS}
    if "hidden_width" in values:
        layers = max(1, len(base.model.hidden_dims))
        model["hidden_dims"] = (int(values["hidden_width"]),) * layers
    trainer = base.train
    if "learning_rate" in values:
        trainer = dataclasses.replace(
            trainer, learning_rate=float(values["learning_rate"])
        )
    return dataclasses.replace(
        base, model=dataclasses.replace(base.model, **model), train=trainer
    )
