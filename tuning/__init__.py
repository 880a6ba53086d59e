"""Hyperparameter search with KerasTuner (see tuning/search.py)."""
