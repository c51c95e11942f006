"""The metrics adapter: an aiohttp server that is an aggregated API server for
`external.metrics.k8s.io/v1beta1` and `custom.metrics.k8s.io/v1beta1` + `v1beta2`.

It will own routes, discovery, authentication, Quantity formatting and the metric sources
(MetricSource objects, a standalone YAML file, prometheus-adapter style rules). It reads values
through `scalers`' MetricCache and talks to Kubernetes only through `kube`.
"""
