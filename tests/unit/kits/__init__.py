"""Unit tests of the kube package's pure parts."""
