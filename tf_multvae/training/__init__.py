"""Training: the strategy, the callbacks and the fit loop.

``python -m tf_multvae.train`` (the command) and the search
(``tuning/``) both train through :mod:`tf_multvae.training.loop`.
"""
