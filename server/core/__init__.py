"""Engine-independent core: domain types, text assembly, chat templates and the engine manager."""
