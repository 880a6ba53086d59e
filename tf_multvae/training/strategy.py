"""The tf.distribute strategy of a run, and which worker is the chief."""

from __future__ import annotations


def make_strategy(name: str):
    """The tf.distribute strategy for ``--strategy``.

    Args:
        name: one of ``tf_multvae.config.STRATEGIES``: "auto"
            (MirroredStrategy when several GPUs are visible, else the
            default), "default", "mirrored" (all GPUs, else all logical
            CPUs), "multi_worker" (TF_CONFIG) or "tpu".

    Raises:
        ValueError: an unknown name.
    """
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return (
            tf.distribute.MirroredStrategy()
            if len(gpus) > 1
            else (tf.distribute.get_strategy())
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All GPUs; without GPUs, all logical CPU devices (one unless
        # configured with tf.config.set_logical_device_configuration).
        devices = tf.config.list_logical_devices("GPU") or (
            tf.config.list_logical_devices("CPU")
        )
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown --strategy {name!r}")


def is_chief(strategy) -> bool:
    """Whether this process writes the run (one worker of a cluster does)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
