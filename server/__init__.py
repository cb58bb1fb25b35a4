"""tokenwire's gRPC server: settings, lifecycle, servicers, engine core and backends."""

from importlib import metadata

# The installed distribution's version (pyproject.toml is its one source).
__version__ = metadata.version("tokenwire")
