"""Integration tests of the metrics adapter: the real HTTPS server on loopback."""
