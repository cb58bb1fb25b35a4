"""Backends run models. Each implements server.core.backend.Backend; registry.py picks one by name."""
