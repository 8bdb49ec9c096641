"""Benchmarks: relevance (``python -m bench.relevance``) and performance (``python -m bench.performance``).

Each writes JSON under ``docs/results/`` and a Markdown report under ``docs/``, naming the
command, the machine and the commit, so a reader can rerun it and compare.
"""
