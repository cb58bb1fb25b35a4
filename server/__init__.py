"""tokenwire's gRPC server: settings, lifecycle, servicers, engine core and backends."""

__version__ = "0.1.0"
