"""tf_multvae: Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018) in TF2/Keras 3.

``MultVAE``, ``MultDAE`` and the configuration classes are re-exported
lazily, so that importing a light module of the package (the record format
used by the Beam workers) does not import TensorFlow.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "MultVAE": "tf_multvae.model",
    "MultDAE": "tf_multvae.model",
    "ModelConfig": "tf_multvae.config",
    "TrainConfig": "tf_multvae.config",
    "RunConfig": "tf_multvae.config",
    "PRESETS": "tf_multvae.config",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tf_multvae' has no attribute {name!r}")
