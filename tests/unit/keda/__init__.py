"""Unit tests of the KEDA front door's pure parts."""
