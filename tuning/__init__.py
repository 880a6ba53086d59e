"""Hyperparameter search with KerasTuner (see tuning/search.py)."""

# First: the package's TensorFlow settings must precede TensorFlow's import.
import tf_multvae  # noqa: F401
