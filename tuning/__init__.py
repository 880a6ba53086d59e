"""Hyperparameter search with KerasTuner (see tuning/search.py)."""

import tf_multvae  # noqa: F401  (first: its TensorFlow settings precede TF's import)
