"""tf_multvae: Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018) in TF2/Keras 3.

``MultVAE``, ``MultDAE`` and the configuration classes are re-exported
lazily, so that importing a light module of the package (the record format
used by the Beam workers) does not import TensorFlow.
"""

import os

__version__ = "0.1.0"

# TensorFlow's x86 builds use oneDNN for matmuls only on CPUs with VNNI,
# bfloat16 or AMX units unless told to; on CPUs with AVX2 and FMA alone its
# matmul then runs at about half speed (measurements: README "Training
# benchmark"). This has to happen before TensorFlow is first imported, so
# every entry point imports this package first; TF_ENABLE_ONEDNN_OPTS=0 in
# the environment keeps TensorFlow's default.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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
