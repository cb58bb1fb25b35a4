"""Model downloads: fetching GGUF files into the models directory, safely and resumably.

`manager` runs downloads (start, watch, cancel, resume after a restart), `transfer` moves one
download's bytes in a worker thread, `http` is the GET that pins each hop to a vetted address,
`sources` holds the URL, address and name rules, `types` what callers see and pass, and
`engines` creates an engine when a download it registered completes.

Like `server.core`, this package takes domain types only: no protobuf (the servicers convert) and
no `server.config` (settings are handed in by `server.app`).
"""
