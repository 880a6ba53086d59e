"""Apache Beam pipelines that prepare Mult-VAE datasets (DESIGN.md §3)."""
