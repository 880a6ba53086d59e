"""Serving: the SavedModel for TF Serving and a client for it.

- ``signatures``: the serving contract (signature, input and output
  names) and the plain-TensorFlow graph behind it;
- ``export``: a run's best model -> ``OUT/VERSION`` SavedModel
  (``python -m tf_multvae.serving.export``);
- ``recommend``: calls an exported model as TF Serving would
  (``python -m tf_multvae.serving.recommend``).
"""
