"""Reports: evaluating runs and putting them side by side.

- ``evaluation``: the library that scores held-out users (Recall@k,
  NDCG@k, per user, a chunk of users at a time);
- ``runs``: a run's scorer, per-user metrics and curves, read back;
- ``evaluate``, ``compare`` (the paper's Figure 3), ``table4`` (Table 4,
  likelihoods), ``plots``: the commands, ``python -m
  tf_multvae.reports.NAME``.
"""
