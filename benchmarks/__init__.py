"""Speed programs, run from the repository root: ``python -m benchmarks.NAME``.

They are not part of the installed packages.
"""
