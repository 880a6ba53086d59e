"""tf_multvae: Mult-VAE^PR and Mult-DAE (Liang et al., WWW 2018) in TF2/Keras 3."""

__version__ = "0.1.0"
