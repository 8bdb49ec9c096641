"""Performance benchmarks (issue #6): one command per target, and one that runs them all.

* ``python -m bench.performance.query``: hybrid vs BM25-only latency, same engine and index;
* ``python -m bench.performance.encoding``: product tower throughput vs plain sentence-transformers;
* ``python -m bench.performance.ingestion``: enqueue-to-searchable through Redis and two workers;
* ``python -m bench.performance.scale``: size, indexing time, latency and recall from 1k to 1M;
* ``python -m bench.performance``: all four, in that order, with the same common arguments.

Each writes ``docs/results/performance-<target>.json`` and its own section of
``docs/performance.md``. Benchmarks measure; they are never timed tests. ``--tiny`` runs a
seconds-long configuration (to a temporary directory) that CI can use to prove they still work.
On a shared machine, run them under ``flock /tmp/acebert-heavy.lock`` so heavy jobs do not overlap.
"""
