"""Celery workers on a Redis broker: product events are queued, then indexed in micro-batches.

Events wait in a Redis list; each ``drain`` task claims up to a batch of them into its own
in-flight list, indexes them through :mod:`indexer`, and clears the list. A redelivered task
(worker killed, ``acks_late``) has the same id and finds its in-flight list again, so nothing is
lost, and external versions make the second write harmless.
"""
