#!/usr/bin/env bash
# Deploy checks: the Dockerfile, the Helm chart, deploy/ manifests, the Grafana dashboard
# and the Prometheus rules. Installs its own pinned tools into a cache outside the repository, so a
# rerun only checks. Run from anywhere; needs Go, Node (with `npm ci` done) and apt (for promtool).
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS="${CALLBACK_SIDECAR_TOOLS:-$HOME/.cache/callback-sidecar-tools}"
HELM_VERSION=v3.22.0
# Helm's Makefile stamps the Kubernetes version of its client-go (v0.37 -> 1.37) into the binary;
# `go install` alone would leave helm assuming Kubernetes 1.20.
HELM_K8S_MINOR=37
KUSTOMIZE_VERSION=v5.8.1
export CALLBACK_SIDECAR_TOOLS="$TOOLS" HELM="$TOOLS/bin/helm" KUSTOMIZE="$TOOLS/bin/kustomize" DEPLOY_CHECKS=1
mkdir -p "$TOOLS/bin"
started=$SECONDS
step() { printf '\n== [%ss] %s\n' "$((SECONDS - started))" "$*"; }

step "tools"
if [[ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]]; then
  GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install -ldflags "\
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
if [[ "$("$KUSTOMIZE" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
  GOBIN="$TOOLS/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
if ! command -v promtool > /dev/null; then
  # Debian's prometheus package is the one that ships promtool; policy-rc.d keeps its service down.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus > /dev/null
fi
echo "helm $("$HELM" version --template '{{.Version}}'), kustomize $("$KUSTOMIZE" version), $(promtool --version 2>&1 | head -1)"

step "Dockerfile lint"
node scripts/deploy-checks/dockerfile.mjs lint

step "helm lint (defaults and every ci/*.yaml)"
"$HELM" lint --strict helm/callback-sidecar
for values in helm/callback-sidecar/ci/*.yaml; do
  "$HELM" lint --strict helm/callback-sidecar -f "$values"
done

step "helm template (defaults and every ci/*.yaml)"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
"$HELM" template cbs helm/callback-sidecar > "$rendered/defaults.yaml"
for values in helm/callback-sidecar/ci/*.yaml; do
  "$HELM" template cbs helm/callback-sidecar -f "$values" > "$rendered/$(basename "$values")"
done
wc -l "$rendered"/*.yaml | tail -1

step "promtool: deploy/prometheus rules, their unit tests, and the chart's PrometheusRule"
promtool check rules deploy/prometheus/callback-sidecar.rules.yaml
promtool test rules deploy/prometheus/callback-sidecar.rules.test.yaml
node scripts/deploy-checks/extract-rules.mjs < "$rendered/all-on-values.yaml" > "$rendered/chart-rules.yaml"
promtool check rules "$rendered/chart-rules.yaml"

step "vitest: strict Kubernetes schemas, chart invariants, sidecar config, metric names, compose, Dockerfile rules"
npx vitest run --config test/deploy/vitest.config.ts

step "Dockerfile replay: build stages, then the entrypoint as the image user on a read-only root"
node scripts/deploy-checks/dockerfile.mjs replay

printf '\ndeploy checks passed in %ss\n' "$((SECONDS - started))"
