"""Unit tests of the metrics adapter: pure logic, no sockets."""
