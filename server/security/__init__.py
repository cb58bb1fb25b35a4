"""Who may call what, how often, and how much: API keys, admin scope, rate limits, concurrency and
time limits, enforced in the gRPC server so gRPC and REST clients get the same protection."""
