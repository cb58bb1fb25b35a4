"""Byte sizes as people read them, shared by the REST bridge (Foundry's formatted sizes) and the
CLI, so both print the same text. Importing this pulls in nothing else."""

MB = 1 << 20
GB = 1 << 30


def human_size(size_bytes: int) -> str:
    """"500.0 MB", "2.0 GB": binary units, one decimal, as Foundry formats sizes."""
    for unit, scale in (("GB", GB), ("MB", MB), ("KB", 1 << 10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"
