"""Tawasul composition root: configuration, CLI, engine and servers."""
