"""Apache Beam pipelines that prepare Mult-VAE datasets.

What a prepared dataset holds: docs/design.md, "The prepared-dataset
contract".
"""
