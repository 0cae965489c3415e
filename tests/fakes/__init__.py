"""Local stand-ins for the platforms' APIs, served on loopback for the real client libraries."""
