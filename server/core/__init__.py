"""Engine-independent core: domain types, text assembly, chat templates, the backend interface,
the engine manager, sessions and the model library.

The domain takes domain types only: it imports no protobuf (server.convert and the servicers
translate), no server.config (settings are handed in by server.app) and none of the packages
built on it (server.backends, server.downloads, server.servicers, ...).
"""
