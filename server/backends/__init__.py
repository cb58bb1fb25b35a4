"""Backends run models. Each implements server.backends.base.Backend; registry.py picks one by name."""
