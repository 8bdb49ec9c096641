"""The worker processes' entry point: ``celery -A workers.main worker``.

Celery's command line finds an app only as a module attribute, so this entry point is the one
module that builds the system from the environment when it is imported. Everything else
receives its settings.
"""
from settings import Settings
from system import System

app = System(Settings.from_env()).worker_app()
