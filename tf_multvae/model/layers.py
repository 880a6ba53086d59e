"""The blocks of Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018, §2).

The first layer (:class:`SparseInputDense`) takes a user's clicked items
as int64 ``[batch, max_len]`` item indices padded with -1 and works on the
non-zeros only (``tf_multvae.model.kernels``); the encoders built on it
are in ``tf_multvae.model.encoders``.

Layers follow the authors' notebook: Glorot-uniform kernels, biases drawn
from a truncated normal of std 0.001, tanh on every hidden layer, linear
mu, log sigma^2 and logits.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tf_multvae.model.kernels import clicked_entries
from tf_multvae.model.kernels import replica_seed
from tf_multvae.model.kernels import sparse_rows_matmul

PACKAGE = "tf_multvae"  # the registered names: "tf_multvae>Encoder", ...
BIAS_STDDEV = 0.001  # the authors' truncated-normal bias initializer


def derived_seed(seed: int | None, k: int) -> int | None:
    """A distinct seed per random object derived from one ``seed``."""
    return None if seed is None else seed + k


def _kernel_initializer(seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


def _bias_initializer(seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=BIAS_STDDEV, seed=seed)


def paper_dense(
    units: int, activation: str | None, seed: int | None, name: str
) -> keras.layers.Dense:
    """A Dense layer with the paper's initializers."""
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=_kernel_initializer(derived_seed(seed, 0)),
        bias_initializer=_bias_initializer(derived_seed(seed, 1)),
        name=name,
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class SparseInputDense(keras.layers.Layer):
    """x_u / ||x_u||, dropout, then a dense layer, over the non-zeros only.

    The first layer of both models (§2: the input is L2-normalized, then
    dropout is applied in training). Dropout acts on the non-zero entries of
    the normalized input, which is the authors' dense dropout with the zeros
    left out (they stay zero either way); kept entries are scaled by
    1 / (1 - rate): dropped entries are removed and the row scale grows.
    The product sums kernel rows (:func:`sparse_rows_matmul`, in float32):
    no dense ``[batch, n_items]`` input and no ``[batch, max_len, units]``
    gather are ever built.

    Call args:
        item_ids: int64 ``[batch, max_len]`` item indices padded with -1.
        training: apply dropout when True.

    Returns:
        ``[batch, units]`` in the layer's compute dtype.
    """

    def __init__(
        self,
        n_items: int,
        units: int,
        dropout: float = 0.0,
        activation: str | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        # The kernel is read in float32 whatever the compute dtype (see
        # call), so Keras must not cast it on every read.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_items = int(n_items)
        self.units = int(units)
        self.dropout = float(dropout)
        self.activation = keras.activations.get(activation)
        self._activation_name = activation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(
            derived_seed(seed, 0), name="dropout_seed"
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.n_items, self.units),
            initializer=_kernel_initializer(derived_seed(self.seed, 1)),
        )  # W: [n_items, units]
        self.bias = self.add_weight(
            name="bias",
            shape=(self.units,),
            initializer=_bias_initializer(derived_seed(self.seed, 2)),
        )
        self.built = True

    def call(self, item_ids, training=False):
        rows, items, scale = clicked_entries(item_ids)
        if training and self.dropout > 0.0:
            kept = (
                tf.nn.experimental.stateless_dropout(
                    tf.ones_like(items, tf.float32),
                    self.dropout,
                    seed=replica_seed(self.seed_generator),
                )
                > 0.0
            )  # [nnz]
            rows = tf.boolean_mask(rows, kept)
            items = tf.boolean_mask(items, kept)
            scale = scale / (1.0 - self.dropout)  # kept entries' scaling
        # The product runs in float32 on the float32 kernel (no cast of the
        # whole [n_items, units] matrix under a mixed-precision policy).
        kernel = tf.convert_to_tensor(self.kernel)  # float32
        outputs = sparse_rows_matmul(kernel, rows, items, scale)
        outputs = tf.cast(outputs, self.compute_dtype)  # [batch, units]
        bias = tf.cast(self.bias, self.compute_dtype)
        return self.activation(outputs + bias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            n_items=self.n_items,
            units=self.units,
            dropout=self.dropout,
            activation=self._activation_name,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(keras.layers.Layer):
    """The reparameterization z = mu + eps * sigma, eps ~ N(0, I) (§2.2).

    In training z is sampled; for prediction z = mu (§2.4: the posterior
    mean is used to score).

    Call args:
        inputs: (mu, logvar), each float ``[batch, latent_dim]``.
        training: sample when True, return mu otherwise.

    Returns:
        float ``[batch, latent_dim]``, the dtype of mu.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(
            seed, name="sampling_seed"
        )

    def call(self, inputs, training=False):
        mu, logvar = inputs
        if not training:
            return mu
        eps = tf.random.stateless_normal(
            tf.shape(mu), replica_seed(self.seed_generator), dtype=mu.dtype
        )  # [batch, latent_dim]
        return mu + eps * tf.exp(0.5 * logvar)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Decoder(keras.layers.Layer):
    """p(x_u | z_u)'s f_theta: latent -> hidden (tanh) -> I logits (§2.1).

    With the paper's sizes: 200 -> 600 tanh -> I for Mult-VAE^PR and
    200 -> I for Mult-DAE.

    Call args:
        z: float ``[batch, latent_dim]``.

    Returns:
        ``[batch, n_items]`` unnormalized logits f_u in the layer's compute
        dtype.
    """

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] = (600,),
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_items = int(n_items)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.seed = seed
        self.dense_layers = [
            paper_dense(units, "tanh", derived_seed(seed, 10 * i), f"dense_{i}")
            for i, units in enumerate(self.hidden_dims, start=1)
        ]
        self.dense_layers.append(
            paper_dense(self.n_items, None, derived_seed(seed, 0), "logits")
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    @property
    def kernels(self) -> list:
        """The weight matrices (no biases), first layer first."""
        return [d.kernel for d in self.dense_layers]

    @property
    def output_layer(self) -> keras.layers.Dense:
        """The last layer: hidden -> I logits."""
        return self.dense_layers[-1]

    def hidden(self, z):
        """The input of :attr:`output_layer`: z through the hidden layers
        (z itself where there are none)."""
        h = z
        for layer in self.dense_layers[:-1]:
            h = layer(h)
        return h

    def call(self, z):
        return self.output_layer(self.hidden(z))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_items)

    def get_config(self):
        config = super().get_config()
        config.update(
            n_items=self.n_items,
            hidden_dims=list(self.hidden_dims),
            seed=self.seed,
        )
        return config
