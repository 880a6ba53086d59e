"""tf_multvae: Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018) in TF2/Keras 3.

``MultVAE``, ``MultDAE`` and the configuration classes are re-exported
lazily, so that importing a light module of the package (the record format
used by the Beam workers) does not import TensorFlow.

When a command of the package is being started (``python -m
tf_multvae.X``: Python imports this package first, with ``sys.argv[0]``
still ``"-m"``), the C++ libraries' start-up logging is sent to the
command's log file here, before the command module's own imports load
TensorFlow (``tf_multvae.cli.quiet_process``; not with ``--verbose``).
"""

import os
import sys

__version__ = "0.1.0"

# TensorFlow's x86 builds use oneDNN for matmuls only on CPUs with VNNI,
# bfloat16 or AMX units unless told to; on CPUs with AVX2 and FMA alone its
# matmul then runs at about half speed (measurements: README "Training
# benchmark"). This has to happen before TensorFlow is first imported, so
# every entry point imports this package first; TF_ENABLE_ONEDNN_OPTS=0 in
# the environment keeps TensorFlow's default.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _starting_command() -> str | None:
    """The ``tf_multvae.X`` module ``python -m`` is starting, if any."""
    argv = getattr(sys, "orig_argv", [])
    if sys.argv[:1] != ["-m"] or "-m" not in argv[:-1]:
        return None
    name = argv[argv.index("-m") + 1]
    return name if name.startswith(f"{__name__}.") else None


_command = _starting_command()
if _command:
    from tf_multvae import cli as _cli

    _cli.quiet_process(_command.rsplit(".", 1)[-1])

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
