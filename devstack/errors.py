"""The one exception devstack raises, so callers (test fixtures, the CLI) catch a single type."""


class EngineStartError(RuntimeError):
    """An engine or Redis could not be installed, started or reached; the message says why."""
