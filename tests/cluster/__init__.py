"""The test control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok."""
