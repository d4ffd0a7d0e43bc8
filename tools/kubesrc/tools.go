//go:build tools

// Package tools pins the kube-apiserver command, built by tools/bootstrap
// --kube with `go build k8s.io/kubernetes/cmd/kube-apiserver`.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
