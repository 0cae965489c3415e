"""Channels: each module turns a platform payload into a neutral message and back."""
