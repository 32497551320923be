// Package deploy holds the Kubernetes (k8s/) and Istio (../istio) manifests of
// eventshop and, in its tests, the checks CI runs on them without a cluster: strict
// decoding, kustomize builds, and cross-checks against the binaries' own flags.
package deploy
