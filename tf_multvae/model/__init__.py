"""The model: Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018, §2), and
the CDAE baseline (``cdae``).

- ``kernels``: the TensorFlow ops under the sparse first layer;
- ``layers``, ``encoders``: the Keras blocks;
- ``recommender``, ``models``: the two Keras models, ``cdae``: CDAE;
- ``losses``, ``annealing``: the objective's pure functions;
- ``optimizers``: Adam as TensorFlow's fused kernel.

Importing this package registers every custom class with Keras (needed
before loading a ``best.keras``).
"""

from tf_multvae.model.cdae import CDAE
from tf_multvae.model.models import MultDAE
from tf_multvae.model.models import MultVAE
from tf_multvae.model.models import build_model
from tf_multvae.model.models import compile_model
from tf_multvae.model.recommender import stack_eval_batch

__all__ = [
    "CDAE",
    "MultDAE",
    "MultVAE",
    "build_model",
    "compile_model",
    "stack_eval_batch",
]
