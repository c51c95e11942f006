"""The one shared Kubernetes layer: client setup, informers (list + watch with 410 re-list),
leader election and CRD helpers.

It imports nothing of ours, so every other package can stand on it.
"""
