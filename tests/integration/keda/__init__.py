"""The KEDA gRPC front door against real gRPC clients on loopback."""
