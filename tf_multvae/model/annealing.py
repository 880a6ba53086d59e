"""KL annealing: beta as a pure function of the update count.

Section 2.2.2 of the paper ("Selecting beta"): beta grows linearly from 0
with the number of gradient updates t as t / ``total_anneal_steps`` and is
capped at ``anneal_cap``. The paper's setting is a cap of 0.2 with
``total_anneal_steps`` = 200,000, so beta stops growing after 40,000
updates.
"""

from __future__ import annotations

import tensorflow as tf


def kl_beta(
    step: tf.Tensor | int, anneal_cap: float, total_anneal_steps: int
) -> tf.Tensor:
    """The KL weight beta_t = min(anneal_cap, t / total_anneal_steps).

    Section 2.2.2 (KL annealing of the beta-weighted ELBO L_beta).

    Args:
        step: int scalar (tensor, variable or Python int), t: the number of
            optimizer updates made so far (``optimizer.iterations``).
        anneal_cap: the largest beta, beta_cap.
        total_anneal_steps: updates over which beta would reach 1; 0 means
            no annealing, beta = ``anneal_cap`` from the first update.

    Returns:
        float32 scalar beta_t.

    Raises:
        ValueError: ``total_anneal_steps`` is negative.
    """
    if total_anneal_steps < 0:
        raise ValueError(
            f"total_anneal_steps must be >= 0, got {total_anneal_steps}"
        )
    cap = tf.constant(anneal_cap, tf.float32)
    if total_anneal_steps == 0:
        return cap
    ramp = tf.cast(step, tf.float32) / float(total_anneal_steps)
    return tf.minimum(cap, ramp)
