"""Channel-agnostic conversation flows, their message catalogue and neutral types."""
