"""Per-user losses of Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018),
and CDAE's weighted square loss.

Every function is pure: tensors in, tensors out. The likelihoods take the
decoder's logits f_u and the user's clicked items as a dense int64
``[batch, max_len]`` tensor of item indices padded with
:data:`tf_multvae.features.PAD` (-1), the layout ``tf_multvae.data`` emits.
Clicks are binary, so x_ui = 1 exactly for the listed items. All results are
float32 per user (``[batch]``); the model takes the batch mean.
"""

from __future__ import annotations

from typing import Callable
from typing import Sequence

import tensorflow as tf

from tf_multvae import features
from tf_multvae import ranking
from tf_multvae.config import LIKELIHOODS


def _is_item(item_ids: tf.Tensor) -> tf.Tensor:
    """bool [batch, max_len]: True where ``item_ids`` holds an item."""
    return item_ids != features.PAD


def _clicks(item_ids: tf.Tensor, n_items: tf.Tensor) -> tf.Tensor:
    """The binary click matrix x, float32 [batch, n_items], by a scatter.

    Padding is scattered with weight 0 onto item 0 instead of being filtered
    out, so every shape stays static (no boolean_mask) for XLA and
    tf.distribute. The ids of a row are distinct, so x is 0/1.
    """
    item_ids = tf.cast(item_ids, tf.int64)
    is_item = _is_item(item_ids)
    columns = tf.where(is_item, item_ids, tf.zeros_like(item_ids))
    coords = ranking.coordinates(columns)  # [batch, max_len, 2]
    batch = tf.shape(item_ids, out_type=tf.int64)[0]
    shape = tf.stack([batch, tf.cast(n_items, tf.int64)])
    return tf.scatter_nd(coords, tf.cast(is_item, tf.float32), shape)


def multinomial_nll(logits: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
    """Negative multinomial log-likelihood of each user's clicks.

    The paper's likelihood (Section 2.1, "Model"): log p(x_u | z_u) =
    sum_i x_ui log pi_i(z_u) with pi = softmax(f_theta(z_u)). Only the
    log-probabilities of the clicked items are gathered; no dense one-hot
    is built.

    The log-probabilities come from one softmax, whose largest entry
    is 1 / sum_i exp(f_ui - max_i f_ui) and never underflows: log Z_u =
    max f_u - log(max softmax(f_u)), and -log pi_i = (max f_u - f_ui) +
    (log Z_u - max f_u) for the clicked items only. (``tf.nn.log_softmax``
    and the ``exp`` of its result for the gradient took 19 ms per
    ML-20M-shape step where the softmax and the two maxima take 10 ms,
    docs/benchmarks.md.)

    The gradient is written out, d/df_u = n_u softmax(f_u) - x_u per unit
    of upstream gradient (n_u: the user's clicks): the softmax scaled per
    user, the clicks subtracted at their items in one pass
    (:func:`tf_multvae.ranking.add_at`), where automatic differentiation
    of the gather would build a zero ``[batch, n_items]`` tensor, scatter
    into it and then run the log-softmax gradient over it.

    Args:
        logits: float32, bfloat16 or float16 ``[batch, n_items]``, the
            decoder's f_u. Cast to float32 before the softmax, so a
            mixed-precision model still gets a float32 loss.
        item_ids: int64 ``[batch, max_len]``, clicked item indices padded
            with -1.

    Returns:
        float32 ``[batch]``: -sum over the user's clicked items of
        log_softmax(f_u)_i (0 for a user without clicks). Not reduced over
        users.
    """
    item_ids = tf.cast(item_ids, tf.int64)
    is_item = _is_item(item_ids)
    safe_ids = tf.where(is_item, item_ids, tf.zeros_like(item_ids))
    weights = tf.cast(is_item, tf.float32)  # [batch, max_len]
    counts = tf.reduce_sum(weights, axis=1)  # [batch], n_u

    @tf.custom_gradient
    def nll(logits):
        probs = tf.nn.softmax(logits, axis=-1)  # [batch, n_items]
        top = tf.reduce_max(logits, axis=-1, keepdims=True)  # [batch, 1]
        # log Z_u - max f_u = log sum_i exp(f_ui - max f_u), >= 0
        log_sum = -tf.math.log(tf.reduce_max(probs, axis=-1, keepdims=True))
        picked = tf.gather(logits, safe_ids, axis=1, batch_dims=1)
        # -log pi_i = (max f_u - f_ui) + (log Z_u - max f_u): the first
        # difference is exact for nearby logits, as in log_softmax.
        per_user = tf.reduce_sum(((top - picked) + log_sum) * weights, -1)

        def grad(upstream):  # [batch]
            d_logits = probs * (counts * upstream)[:, None]
            # Padding points at item 0 with a zero update.
            return ranking.add_at(
                d_logits, safe_ids, -weights * upstream[:, None]
            )  # [batch, n_items]

        return per_user, grad

    return nll(tf.cast(logits, tf.float32))


def gaussian_nll(logits: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
    """Negative Gaussian log-likelihood, up to its additive constant.

    The paper's Gaussian alternative (Section 2.1; compared in Table 4):
    log p(x_u | z_u) = -sum_i c_ui / 2 (x_ui - f_ui)^2. We take equal
    confidence c_ui = 1 for every item, clicked or not (the paper leaves
    c_ui as a weighted-MF style confidence; with binary clicks and no
    tuning of it, equal weights is the plain Gaussian).

    Args:
        logits: float ``[batch, n_items]``, the decoder's f_u (cast to
            float32).
        item_ids: int64 ``[batch, max_len]``, clicked item indices padded
            with -1; scattered into the binary x_u.

    Returns:
        float32 ``[batch]``: 0.5 * sum over all items of (x_ui - f_ui)^2.
        Not reduced over users.
    """
    logits = tf.cast(logits, tf.float32)
    x = _clicks(item_ids, tf.shape(logits)[1])  # [batch, n_items]
    return 0.5 * tf.reduce_sum(tf.square(x - logits), axis=-1)


def logistic_nll(logits: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
    """Negative logistic (Bernoulli) log-likelihood of each user's clicks.

    The paper's logistic alternative (Section 2.1; compared in Table 4):
    log p(x_u | z_u) = sum_i x_ui log sigma(f_ui) + (1 - x_ui)
    log(1 - sigma(f_ui)). Computed as softplus(f) - x f, which equals the
    negation of that sum and neither overflows nor takes log(0).

    Args:
        logits: float ``[batch, n_items]``, the decoder's f_u (cast to
            float32).
        item_ids: int64 ``[batch, max_len]``, clicked item indices padded
            with -1; scattered into the binary x_u.

    Returns:
        float32 ``[batch]``: the binary cross-entropy summed over all items.
        Not reduced over users.
    """
    logits = tf.cast(logits, tf.float32)
    x = _clicks(item_ids, tf.shape(logits)[1])  # [batch, n_items]
    return tf.reduce_sum(tf.nn.softplus(logits) - x * logits, axis=-1)


def click_matrix(item_ids: tf.Tensor, n_items) -> tf.Tensor:
    """The binary click matrix x, float32 ``[batch, n_items]``."""
    return _clicks(item_ids, n_items)


def weighted_square_loss(
    outputs: tf.Tensor, item_ids: tf.Tensor, negative_weight: float
) -> tf.Tensor:
    """CDAE's loss: sum_i c_ui (x_ui - f_ui)^2 for each user.

    The square loss of Wu et al. (2016) as the paper trains its CDAE
    baseline, with every item weighted instead of sampled: c_ui = 1 on
    clicks and ``negative_weight`` on the other items. It is twice the
    Gaussian negative log-likelihood of Section 2.1 with confidences c_ui
    (up to its constant).

    Args:
        outputs: float ``[batch, n_items]``, the network's f_u (CDAE: a
            tanh output); cast to float32.
        item_ids: int64 ``[batch, max_len]``, clicked item indices padded
            with -1.
        negative_weight: c_ui of an unclicked item.

    Returns:
        float32 ``[batch]``, not reduced over users.
    """
    outputs = tf.cast(outputs, tf.float32)
    x = _clicks(item_ids, tf.shape(outputs)[1])  # [batch, n_items]
    confidence = negative_weight + (1.0 - negative_weight) * x
    return tf.reduce_sum(confidence * tf.square(x - outputs), axis=-1)


_NLL: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "multinomial": multinomial_nll,
    "gaussian": gaussian_nll,
    "logistic": logistic_nll,
}


def negative_log_likelihood(
    likelihood: str, logits: tf.Tensor, item_ids: tf.Tensor
) -> tf.Tensor:
    """The negative log-likelihood named by ``likelihood``.

    The three likelihoods of the paper (Section 2.1; Table 4 compares them).

    Args:
        likelihood: one of :data:`LIKELIHOODS`.
        logits: float ``[batch, n_items]``, the decoder's f_u.
        item_ids: int64 ``[batch, max_len]``, clicked item indices padded
            with -1.

    Returns:
        float32 ``[batch]``, one value per user, not reduced.

    Raises:
        ValueError: ``likelihood`` is not one of :data:`LIKELIHOODS`.
    """
    try:
        nll = _NLL[likelihood]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown likelihood {likelihood!r}; expected one of "
            f"{', '.join(LIKELIHOODS)}"
        ) from None
    return nll(logits, item_ids)


def gaussian_kl(mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """KL(q(z_u | x_u) || p(z_u)) for a diagonal Gaussian q and p = N(0, I).

    The regularizer of the ELBO and of its beta-weighted form L_beta
    (Section 2.2), in closed form:
    0.5 * sum_k (-logvar_k + exp(logvar_k) + mu_k^2 - 1).

    Args:
        mu: float ``[batch, latent_dim]``, the posterior mean.
        logvar: float ``[batch, latent_dim]``, the posterior log variance
            log sigma^2.

    Returns:
        float32 ``[batch]``: the KL divergence summed over latent
        dimensions. Not reduced over users.
    """
    mu = tf.cast(mu, tf.float32)
    logvar = tf.cast(logvar, tf.float32)
    terms = -logvar + tf.exp(logvar) + tf.square(mu) - 1.0
    return 0.5 * tf.reduce_sum(terms, axis=-1)


def l2_penalty(kernels: Sequence[tf.Tensor]) -> tf.Tensor:
    """Sum of squared entries of the given weight matrices.

    Mult-DAE's weight decay (Section 2.3, the DAE objective) is lambda
    times this; the caller passes the kernels only, not the biases.

    Args:
        kernels: float tensors (or variables) of any shape, e.g.
            ``[n_in, n_out]`` weight matrices.

    Returns:
        float32 scalar: sum over all matrices and entries of w^2 (0 for an
        empty list).
    """
    total = tf.constant(0.0, tf.float32)
    for kernel in kernels:
        total += tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32)))
    return total
