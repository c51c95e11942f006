"""The test control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback."""
