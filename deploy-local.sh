#!/usr/bin/env bash
# heracles-harness: fresh machine -> running platform on the local backend.
#
#   ./deploy-local.sh                  system deps, .venv, toolchain, then `harness up` (dev)
#   ./deploy-local.sh --profile staging
#   ./deploy-local.sh --setup-only     everything but `harness up` (what CI uses)
#   ./deploy-local.sh --backend pods   the platform from its Helm charts as real Pods on a
#                                      real node joined to the local control plane (root)
#   ./deploy-local.sh --backend kind   a kind cluster (node image built here) with the
#                                      charts; your Docker, or a private dockerd as root
#
# Every step is idempotent: a second run reuses the venv and the toolchain cache
# (binaries keyed by component + version under $XDG_CACHE_HOME/heracles-harness).
set -euo pipefail
cd "$(dirname "$0")"

profile="${HERACLES_PROFILE:-dev}"
backend="${HERACLES_BACKEND:-local}"
setup_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs a value: dev, staging or prod}"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --setup-only) setup_only=1; shift ;;
    --backend) backend="${2:?--backend needs a value: local, pods or kind}"; shift 2 ;;
    --backend=*) backend="${1#*=}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "deploy-local.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$backend" in local|pods|kind) ;; *)
  echo "deploy-local.sh: unknown backend '$backend'; choose local, pods or kind (an existing cluster needs no deploy: see README)" >&2; exit 2 ;;
esac
case "$profile" in dev|staging|prod) ;; *)
  echo "deploy-local.sh: unknown profile '$profile'; choose dev, staging or prod" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "system prerequisites"
need_apt=()
command -v git >/dev/null || need_apt+=(git)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "missing: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2; exit 1
  fi
fi
if ! command -v go >/dev/null; then
  echo "the Go toolchain (>= 1.24) is required to build etcd, Kubernetes, KWOK, ESO, Argo CD and Toxiproxy from their modules; install Go and re-run" >&2
  exit 1
fi
echo "python: $(python3 --version 2>&1)  go: $(go env GOVERSION)"

step "python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -c constraints.txt

step "toolchain (built once, then cached by version)"
.venv/bin/harness toolchain install
.venv/bin/harness toolchain status

step "container images (from the toolchain, no registry; cached by content)"
.venv/bin/harness images build
if [ "$(id -u)" -eq 0 ]; then
  step "kind node image (Debian rootfs + kind's base files + the images above; cached)"
  .venv/bin/harness images node-image
fi

if [ "$setup_only" -eq 1 ]; then
  step "setup done in $(( $(date +%s) - started ))s (--setup-only: platform not started)"
  exit 0
fi

if [ "$backend" = kind ] || [ "$backend" = pods ]; then
  if [ "$backend" = kind ]; then
    step "kind backend (profile: $profile): the node image built here, kind against your Docker (or a private daemon as root), the platform's Helm charts"
    .venv/bin/harness backend kind-plan --profile "$profile" >/dev/null
    where="on a kind cluster"
  else
    step "pods backend (profile: $profile): control plane + real node, the platform's Helm charts as Pods"
    where="as Pods"
  fi
  .venv/bin/harness up --backend "$backend" --profile "$profile" >/dev/null
  step "GitOps bootstrap: Argo CD (a Pod) syncs argocd/$profile/app-of-apps.yaml from the Git server"
  bootstrap_ok=1
  .venv/bin/harness gitops bootstrap --backend "$backend" || bootstrap_ok=0
  eval "$(.venv/bin/harness env --backend "$backend")"
  kubectl get pods -n vault -o wide
  kubectl get pods -n external-secrets
  kubectl get pods -n argocd
  kubectl get applications -n argocd
  kubectl get externalsecrets --all-namespaces
  step "done in $(( $(date +%s) - started ))s"
  cat <<TXT
The platform runs $where (profile $profile). The spec's runbook works as written:
  eval "\$(.venv/bin/harness env --backend $backend)"
  kubectl exec -n vault vault-0 -- vault status
  kubectl logs -n external-secrets deployment/external-secrets
  kubectl get applications -n argocd
Stop:            .venv/bin/harness down --backend $backend
TXT
  if [ "$bootstrap_ok" -ne 1 ]; then
    echo "The app-of-apps is not Synced/Healthy (see above). On staging/prod the spec's store" >&2
    echo "says http:// while Vault speaks TLS only — README, \"What the harness found\"." >&2
    exit 1
  fi
  exit 0
fi

step "platform up (profile: $profile)"
.venv/bin/harness up --profile "$profile" >/dev/null

step "prerequisite from the spec: Prometheus Operator CRDs (before Argo CD syncs)"
.venv/bin/harness crds install prometheus-operator

step "GitOps bootstrap: Argo CD syncs argocd/$profile/app-of-apps.yaml from the local Git server"
# secrets (ClusterSecretStore vault-cluster-backend + ExternalSecrets), observability
# (PrometheusRule + ServiceMonitor) and the sample workload, each an Application.
bootstrap_ok=1
.venv/bin/harness gitops bootstrap || bootstrap_ok=0
eval "$(.venv/bin/harness env)"
kubectl get externalsecrets -n app

step "the spec's alert rules against the metrics the platform really exposes"
.venv/bin/harness rules check || echo "(a dead rule in the spec: see README, \"What the harness found\")"

step "done in $(( $(date +%s) - started ))s"
cat <<TXT
The platform is running (profile $profile). Where everything is:
  kubeconfig     $KUBECONFIG
  Vault          $VAULT_ADDR   (VAULT_TOKEN: set by \`harness env\` from its 0600 file)
  Prometheus     $HERACLES_PROMETHEUS_URL
  Alertmanager   $HERACLES_ALERTMANAGER_URL
  Git (Argo CD)  $HERACLES_GIT_URL   (branches dev, staging, main)
In a shell:      eval "\$(.venv/bin/harness env)"
Then:            kubectl get applications -n argocd
                 kubectl get externalsecrets,secrets,pods -n app
                 vault status; vault kv get secret/redis/main   (the runbook's vault: on PATH)
Change the platform: .venv/bin/harness git clone /tmp/platform; edit; git commit; git push
Status / stop:   .venv/bin/harness status   |   .venv/bin/harness down
TXT
if [ "$bootstrap_ok" -ne 1 ]; then
  echo "The app-of-apps is not Synced/Healthy (see above). On staging/prod the spec's store" >&2
  echo "says http:// while Vault speaks TLS only — README, \"What the harness found\"." >&2
  exit 1
fi
