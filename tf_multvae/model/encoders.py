"""The two encoders: q(z | x) of Mult-VAE^PR and Mult-DAE's code.

Both are :class:`~tf_multvae.model.layers.SparseInputDense` (normalized,
dropped-out sparse input) followed by dense layers; they differ in the
last layer only (§2.2, §2.3).
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tf_multvae.model.layers import PACKAGE
from tf_multvae.model.layers import SparseInputDense
from tf_multvae.model.layers import derived_seed
from tf_multvae.model.layers import paper_dense


class _SparseStack(keras.layers.Layer):
    """SparseInputDense, then Dense layers: what both encoders share.

    Sizes I -> hidden_dims (tanh) -> ``output_units``; the last layer's
    activation is ``last_activation``. Without ``hidden_dims`` a subclass
    has its paper default, ``default_hidden_dims``.
    """

    last_activation: str | None = None
    default_hidden_dims: tuple[int, ...] = ()

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] | None = None,
        latent_dim: int = 200,
        dropout: float = 0.5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dims is None:
            hidden_dims = self.default_hidden_dims
        self.n_items = int(n_items)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.latent_dim = int(latent_dim)
        self.dropout = float(dropout)
        self.seed = seed
        dims = self.hidden_dims + (self.output_units,)
        activations = ["tanh"] * (len(dims) - 1) + [self.last_activation]
        self.input_layer = SparseInputDense(
            self.n_items,
            dims[0],
            dropout=self.dropout,
            activation=activations[0],
            seed=derived_seed(seed, 0),
            name="input_dense",
        )
        self.dense_layers = [
            paper_dense(
                dims[i],
                activations[i],
                derived_seed(seed, 10 * i),
                f"dense_{i}",
            )
            for i in range(1, len(dims))
        ]

    @property
    def output_units(self) -> int:
        raise NotImplementedError

    def build(self, input_shape):
        self.input_layer.build(input_shape)
        shape = self.input_layer.compute_output_shape(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    @property
    def kernels(self) -> list:
        """The weight matrices (no biases), first layer first."""
        return [self.input_layer.kernel] + [d.kernel for d in self.dense_layers]

    def _stack(self, item_ids, training):
        h = self.input_layer(item_ids, training=training)
        for layer in self.dense_layers:
            h = layer(h)
        return h  # [batch, output_units]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_items=self.n_items,
            hidden_dims=list(self.hidden_dims),
            latent_dim=self.latent_dim,
            dropout=self.dropout,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Encoder(_SparseStack):
    """q(z_u | x_u): I -> hidden (tanh) -> (mu, log sigma^2) of latent_dim.

    The inference network of Mult-VAE^PR (§2.2). As in the authors'
    notebook, the last layer is one linear head of 2 * latent_dim units,
    split into mu (first half) and log sigma^2 (second half). With the
    paper's sizes: I -> 600 tanh -> 400 -> (200, 200).

    Call args:
        item_ids: int64 ``[batch, max_len]`` item indices padded with -1.
        training: apply input dropout when True.

    Returns:
        (mu, logvar), each float32 ``[batch, latent_dim]`` (float32 under a
        mixed-precision policy too, for the KL term).
    """

    default_hidden_dims = (600,)

    @property
    def output_units(self) -> int:
        return 2 * self.latent_dim

    def call(self, item_ids, training=False):
        h = tf.cast(self._stack(item_ids, training), tf.float32)
        mu = h[:, : self.latent_dim]  # [batch, latent_dim]
        logvar = h[:, self.latent_dim :]  # [batch, latent_dim]
        return mu, logvar

    def compute_output_shape(self, input_shape):
        shape = (input_shape[0], self.latent_dim)
        return shape, shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class DenoisingEncoder(_SparseStack):
    """Mult-DAE's encoder: I -> hidden (tanh) -> latent_dim (tanh).

    §2.3: the same normalized, dropped-out input as the VAE, mapped to a
    deterministic code. With the paper's sizes it is one layer, I -> 200
    tanh.

    Call args:
        item_ids: int64 ``[batch, max_len]`` item indices padded with -1.
        training: apply input dropout when True.

    Returns:
        ``[batch, latent_dim]`` in the layer's compute dtype.
    """

    last_activation = "tanh"

    @property
    def output_units(self) -> int:
        return self.latent_dim

    def call(self, item_ids, training=False):
        return self._stack(item_ids, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)
