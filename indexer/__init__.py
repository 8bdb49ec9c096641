"""Write path: product events -> documents -> vectors -> versioned bulk writes into the index.

Called by the Celery workers and, for bulk loads, by the CLI; it knows nothing of Celery.
"""
