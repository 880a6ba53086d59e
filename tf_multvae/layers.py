"""The blocks of Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018, §2).

Inputs are a user's clicked items as a dense int64 ``[batch, max_len]``
tensor of item indices padded with :data:`tf_multvae.features.PAD` (-1).
The click matrix x (``[batch, n_items]``) is never materialized: the first
layer finds the non-zeros inside the model and sums the kernel rows they
select (DESIGN.md §5), so a SavedModel and every tf.distribute strategy can
be fed plain padded ids.

Layers follow the authors' notebook: Glorot-uniform kernels, biases drawn
from a truncated normal of std 0.001, tanh on every hidden layer, linear
mu, log sigma^2 and logits.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tf_multvae import features

_PACKAGE = "tf_multvae"
BIAS_STDDEV = 0.001  # the authors' truncated-normal bias initializer


def _offset(seed: int | None, k: int) -> int | None:
    """A distinct seed per random object derived from one ``seed``."""
    return None if seed is None else seed + k


def _kernel_initializer(seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


def _bias_initializer(seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=BIAS_STDDEV, seed=seed)


def _dense(
    units: int, activation: str | None, seed: int | None, name: str
) -> keras.layers.Dense:
    """A Dense layer with the paper's initializers."""
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=_kernel_initializer(_offset(seed, 0)),
        bias_initializer=_bias_initializer(_offset(seed, 1)),
        name=name,
    )


def replica_seed(generator: keras.random.SeedGenerator) -> tf.Tensor:
    """The next seed of ``generator``, distinct per tf.distribute replica.

    Under a tf.distribute strategy every replica reads the same (mirrored)
    generator state; folding in the replica id keeps their dropout masks
    and sampling noise independent. With one replica it is the seed that
    ``keras.random`` would draw.

    Returns:
        int32 ``[2]``, a seed for the ``tf.random.stateless_*`` ops.
    """
    seed = generator.next()  # [2], advances the generator
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        seed = tf.random.experimental.stateless_fold_in(
            seed, context.replica_id_in_sync_group
        )
    return seed


def clicked_entries(
    item_ids: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The non-zeros of the click matrix x, and its rows' L2 scale.

    A user's row has one 1 per distinct clicked item, so its norm is
    sqrt(n_u) and every non-zero of the normalized row x_u / ||x_u|| is
    1 / sqrt(n_u) (the authors' ``tf.nn.l2_normalize`` of the binary
    input).

    Args:
        item_ids: int ``[batch, max_len]``, distinct item indices per row,
            padded with -1.

    Returns:
        (rows, items, scale): int64 ``[nnz]`` row and item of each non-zero
        in row-major order, and float32 ``[batch]`` 1 / sqrt(n_u) (1 for a
        user without clicks, whose row has no entries).
    """
    item_ids = tf.cast(item_ids, tf.int64)
    is_item = item_ids != features.PAD  # [batch, max_len]
    positions = tf.where(is_item)  # [nnz, 2] (row, position in row)
    items = tf.gather_nd(item_ids, positions)  # [nnz]
    counts = tf.reduce_sum(tf.cast(is_item, tf.float32), axis=1)  # [batch]
    scale = tf.math.rsqrt(tf.maximum(counts, 1.0))
    return positions[:, 0], items, scale


@tf.custom_gradient
def sparse_rows_matmul(
    kernel: tf.Tensor,
    rows: tf.Tensor,
    items: tf.Tensor,
    scale: tf.Tensor,
) -> tf.Tensor:
    """y = diag(scale) X W for a binary X given by its non-zeros.

    X is ``[batch, n_items]`` with X[rows[j], items[j]] = 1. The product
    and its gradient are both sums of kernel (or gradient) rows
    (``tf.sparse.segment_sum``); on CPU this is several times faster than
    ``tf.sparse.sparse_dense_matmul``, whose gradient with respect to the
    dense operand is slow.

    Args:
        kernel: float32 ``[n_items, units]``, W.
        rows: int64 ``[nnz]``, sorted ascending (row-major non-zeros).
        items: int64 ``[nnz]``, each non-zero's column.
        scale: float32 ``[batch]``, each row's value.

    Returns:
        float32 ``[batch, units]``. Only ``kernel`` gets a gradient:
        dL/dW = X^T diag(scale) dL/dy, as a dense ``[n_items, units]``.
    """
    batch = tf.shape(scale)[0]
    sums = tf.sparse.segment_sum(kernel, items, rows, num_segments=batch)
    outputs = sums * scale[:, None]

    def grad(upstream):
        by_item = tf.argsort(items, stable=True)  # segment ids must sort
        d_kernel = tf.sparse.segment_sum(
            upstream * scale[:, None],
            tf.gather(rows, by_item),
            tf.gather(items, by_item),
            num_segments=tf.shape(kernel)[0],
        )  # [n_items, units]
        return d_kernel, None, None, None

    return outputs, grad


@keras.saving.register_keras_serializable(package=_PACKAGE)
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
            _offset(seed, 0), name="dropout_seed"
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.n_items, self.units),
            initializer=_kernel_initializer(_offset(self.seed, 1)),
        )  # W: [n_items, units]
        self.bias = self.add_weight(
            name="bias",
            shape=(self.units,),
            initializer=_bias_initializer(_offset(self.seed, 2)),
        )
        self.built = True

    def call(self, item_ids, training=False):
        rows, items, scale = clicked_entries(item_ids)
        if training and self.dropout > 0.0:
            kept = tf.nn.experimental.stateless_dropout(
                tf.ones_like(items, tf.float32),
                self.dropout,
                seed=replica_seed(self.seed_generator),
            ) > 0.0  # [nnz]
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


class _SparseStack(keras.layers.Layer):
    """SparseInputDense, then Dense layers: what both encoders share.

    Sizes I -> hidden_dims (tanh) -> ``output_units``; the last layer's
    activation is ``last_activation``.
    """

    last_activation: str | None = None

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        dropout: float,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
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
            seed=_offset(seed, 0),
            name="input_dense",
        )
        self.dense_layers = [
            _dense(dims[i], activations[i], _offset(seed, 10 * i), f"dense_{i}")
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
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

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] = (600,),
        latent_dim: int = 200,
        dropout: float = 0.5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            n_items, hidden_dims, latent_dim, dropout, seed, **kwargs
        )

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


@keras.saving.register_keras_serializable(package=_PACKAGE)
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

    def __init__(
        self,
        n_items: int,
        hidden_dims: Sequence[int] = (),
        latent_dim: int = 200,
        dropout: float = 0.5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            n_items, hidden_dims, latent_dim, dropout, seed, **kwargs
        )

    @property
    def output_units(self) -> int:
        return self.latent_dim

    def call(self, item_ids, training=False):
        return self._stack(item_ids, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)


@keras.saving.register_keras_serializable(package=_PACKAGE)
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
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
            _dense(units, "tanh", _offset(seed, 10 * i), f"dense_{i}")
            for i, units in enumerate(self.hidden_dims, start=1)
        ]
        self.dense_layers.append(
            _dense(self.n_items, None, _offset(seed, 0), "logits")
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

    def call(self, z):
        h = z
        for layer in self.dense_layers:
            h = layer(h)
        return h

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
