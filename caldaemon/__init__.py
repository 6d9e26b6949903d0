"""caldaemon: keeps a trauma therapist's calendar inside the boundaries they set."""

# The one source of the version: pyproject.toml reads it from here.
__version__ = "0.2.0.dev0"
