// Package kubernetes holds obolus's Kubernetes manifests (a kustomize base
// and overlays, see docs/deploy.md) and the test that renders them: every
// object decodes strictly into its Kubernetes type, and the probes, ports,
// configuration keys and alert expressions match what the binary serves,
// reads and exposes, and the pods' user, port and data volume are those of
// the image (deploy/container/Containerfile). It has no Go code of its own.
package kubernetes
