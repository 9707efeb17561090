"""What each image holds: the toolchain's binaries, Debian's files, busybox where a shell
is needed, under the names and tags the charts reference (or pin through values).

No base image is pulled. A recipe names its files by where they come from; the builder
resolves them (`Source.resolve`), hashes them, and only then decides whether the cached
archive is still right. Dynamically linked programs (Debian's Redis, Prometheus, git)
carry their `ldd` closure: the exact libraries this machine's packages link against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Upstream names and tags. Where our version differs from the chart's default, the
# pods/kind backends pin the tag through values (so the chart still renders its own
# repository); the tags here are what those values say.
PAUSE = "registry.k8s.io/pause:3.10.1"
COREDNS = "registry.k8s.io/coredns/coredns:v1.12.1"
BUSYBOX = "docker.io/library/busybox:1.35.0"
LOCAL_PATH = "docker.io/rancher/local-path-provisioner:v0.0.30"
OPENBAO = "quay.io/openbao/openbao:2.7.2"
ESO = "oci.external-secrets.io/external-secrets/external-secrets:v0.16.2"
ARGOCD = "quay.io/argoproj/argocd:v3.2.11"
REDIS = "ecr-public.aws.com/docker/library/redis:7.0.15"
PROMETHEUS = "quay.io/prometheus/prometheus:v2.42.0"
ALERTMANAGER = "quay.io/prometheus/alertmanager:v0.25.0"
# The kind node's control plane, under the names and tags `kubeadm config images list`
# gives for v1.34.4. etcd is the toolchain's v3.6.16 under the tag kubeadm asks for.
# The fixtures' workload (fixtures/gitops/workload): on KWOK nodes nothing is pulled; on
# kind its Pods run this — busybox httpd answering on its metrics port.
SAMPLE_APP = "registry.example.com/sample-app:1.0.0"
KUBE_VERSION = "v1.34.4"
KUBE_APISERVER = f"registry.k8s.io/kube-apiserver:{KUBE_VERSION}"
KUBE_CONTROLLER_MANAGER = f"registry.k8s.io/kube-controller-manager:{KUBE_VERSION}"
KUBE_SCHEDULER = f"registry.k8s.io/kube-scheduler:{KUBE_VERSION}"
KUBE_PROXY = f"registry.k8s.io/kube-proxy:{KUBE_VERSION}"
ETCD = "registry.k8s.io/etcd:3.6.5-0"

NOBODY = "65534:65534"


@dataclass(frozen=True)
class Source:
    """Where one file of an image comes from.

    kind: "toolchain" (component, binary), "host" (an absolute path from a Debian
    package), "built" (an artifact the builder compiles, e.g. "pause").
    """

    kind: str
    ref: str
    name: str = ""

    def describe(self) -> str:
        return f"{self.kind}:{self.ref}" + (f"/{self.name}" if self.name else "")


def tool(component: str, binary: str) -> Source:
    return Source("toolchain", component, binary)


def host(path: str) -> Source:
    return Source("host", path)


@dataclass(frozen=True)
class Recipe:
    """One image: its reference, files (image path -> source), symlinks, libraries and
    the OCI config the runtime reads (entrypoint, user, env, ports)."""

    key: str
    ref: str
    files: dict[str, Source]
    symlinks: dict[str, str] = field(default_factory=dict)  # link path -> target
    shell: bool = True  # busybox at /bin (sh, wget, nc, ...): the base layer
    libs_of: tuple[str, ...] = ()  # image paths of dynamic programs: copy their ldd closure
    host_trees: tuple[str, ...] = ()  # directories copied whole (git's helpers)
    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode, created empty
    users: tuple[tuple[str, int], ...] = ()  # extra /etc/passwd entries (name, uid)
    # programs that bind ports below 1024 as non-root: the file capability
    # cap_net_bind_service=+ep, as the upstream image sets it (CoreDNS on :53)
    net_bind: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    env: tuple[str, ...] = ()
    workdir: str = ""
    ports: tuple[str, ...] = ()

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    def identity(self) -> dict[str, object]:
        """Everything of the recipe except file contents (those are hashed apart)."""
        return {
            "ref": self.ref, "files": {k: v.describe() for k, v in sorted(self.files.items())},
            "symlinks": dict(sorted(self.symlinks.items())), "shell": self.shell,
            "libs_of": list(self.libs_of), "host_trees": list(self.host_trees),
            "dirs": dict(sorted(self.dirs.items())), "users": [list(u) for u in self.users],
            **({"net_bind": list(self.net_bind)} if self.net_bind else {}),
            "entrypoint": list(self.entrypoint), "cmd": list(self.cmd), "user": self.user,
            "env": list(self.env), "workdir": self.workdir, "ports": list(self.ports),
        }


PATH_ENV = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
ARGOCD_COMMANDS = ("argocd-server", "argocd-repo-server", "argocd-application-controller",
                   "argocd-cmp-server", "argocd-notifications", "argocd-dex",
                   "argocd-applicationset-controller", "argocd-k8s-auth",
                   "argocd-commit-server", "argocd-git-ask-pass")

# iptables' extensions (dlopened by name: `-m statistic`...) and what they link (libm).
XTABLES_DIR = "/usr/lib/x86_64-linux-gnu/xtables"
XTABLES_EXTENSIONS = tuple(str(p) for p in sorted(Path(XTABLES_DIR).glob("*.so")))
IPTABLES_COMMANDS = ("iptables", "iptables-save", "iptables-restore", "ip6tables",
                     "ip6tables-save", "ip6tables-restore")

RECIPES: dict[str, Recipe] = {r.key: r for r in (
    Recipe("pause", PAUSE, {"/pause": Source("built", "pause")}, shell=False,
           entrypoint=("/pause",), user=NOBODY),
    Recipe("busybox", BUSYBOX, {}, cmd=("sh",), env=(PATH_ENV,)),
    # The kind node's static Pods (kubeadm runs `kube-apiserver ...` etc. by name).
    *(Recipe(name, ref, {f"/usr/local/bin/{name}": tool(component, name)}, shell=False,
             env=(PATH_ENV,))
      for name, ref, component in (
          ("kube-apiserver", KUBE_APISERVER, "kubernetes"),
          ("kube-controller-manager", KUBE_CONTROLLER_MANAGER, "kubernetes"),
          ("kube-scheduler", KUBE_SCHEDULER, "kubernetes"))),
    Recipe("etcd", ETCD, {"/usr/local/bin/etcd": tool("etcd", "etcd"),
                          "/usr/local/bin/etcdctl": tool("etcd", "etcdctl")},
           shell=False, env=(PATH_ENV,)),
    # kube-proxy programs iptables in the mode the node uses (legacy or nft): both
    # Debian multi-binaries, their extensions, conntrack, and the iptables-wrappers rule.
    Recipe("kube-proxy", KUBE_PROXY,
           {"/usr/local/bin/kube-proxy": tool("kubernetes-node", "kube-proxy"),
            "/usr/sbin/xtables-legacy-multi": host("/usr/sbin/xtables-legacy-multi"),
            "/usr/sbin/xtables-nft-multi": host("/usr/sbin/xtables-nft-multi"),
            "/usr/sbin/conntrack": host("/usr/sbin/conntrack"),
            "/usr/sbin/iptables-wrapper": Source("built", "iptables-wrapper")},
           symlinks={f"/usr/sbin/{c}": "iptables-wrapper" for c in IPTABLES_COMMANDS},
           libs_of=("/usr/sbin/xtables-legacy-multi", "/usr/sbin/xtables-nft-multi",
                    "/usr/sbin/conntrack", *XTABLES_EXTENSIONS),
           host_trees=(XTABLES_DIR,), env=(PATH_ENV,)),
    Recipe("coredns", COREDNS, {"/coredns": tool("coredns", "coredns")}, shell=False,
           entrypoint=("/coredns",), user=NOBODY, ports=("53/udp", "53/tcp"),
           net_bind=("/coredns",)),
    Recipe("local-path-provisioner", LOCAL_PATH,
           {"/usr/bin/local-path-provisioner": tool("local-path-provisioner",
                                                    "local-path-provisioner")},
           entrypoint=("local-path-provisioner",), env=(PATH_ENV,)),
    # The runbook says `vault ...` inside the Pod: `vault` is `bao` under the name the
    # chart and the runbook use.
    Recipe("openbao", OPENBAO, {"/bin/bao": tool("openbao", "bao"),
                                "/usr/local/bin/docker-entrypoint.sh": Source(
                                    "built", "openbao-entrypoint")},
           symlinks={"/bin/vault": "bao"}, dirs={"/vault/data": 0o777, "/vault/logs": 0o777,
                                                  "/vault/config": 0o755,
                                                  "/openbao/config": 0o755},
           users=(("openbao", 100), ("vault", 1000)),
           entrypoint=("bao",), cmd=("server", "-dev"), env=(PATH_ENV,), ports=("8200/tcp",)),
    Recipe("external-secrets", ESO,
           {"/bin/external-secrets": tool("external-secrets", "external-secrets")},
           shell=False, entrypoint=("/bin/external-secrets",), user=NOBODY),
    # Argo CD's image: one binary answering to every component name, plus what the
    # repo-server shells out to (git, helm, kustomize, gpg).
    Recipe("argocd", ARGOCD,
           {"/usr/local/bin/argocd": tool("argocd", "argocd"),
            "/usr/local/bin/helm": tool("helm", "helm"),
            "/usr/local/bin/kustomize": tool("kustomize", "kustomize"),
            "/usr/bin/git": host("/usr/bin/git"),
            "/usr/bin/gpg": host("/usr/bin/gpg"),
            # the repo-server generates its GnuPG key at start: gpg spawns the agent
            "/usr/bin/gpg-agent": host("/usr/bin/gpg-agent"),
            "/usr/local/bin/gpg-wrapper.sh": Source("built", "gpg-wrapper"),
            "/usr/bin/ssh": host("/usr/bin/ssh"),
            # The chart's copyutil init container runs `cp --update=none` (coreutils
            # >= 9.3; busybox and bookworm's 9.1 refuse it): a cp that reads it as -n.
            "/bin/cp": Source("built", "argocd-cp")},
           symlinks={f"/usr/local/bin/{c}": "argocd" for c in ARGOCD_COMMANDS},
           libs_of=("/usr/bin/git", "/usr/bin/gpg", "/usr/bin/gpg-agent", "/usr/bin/ssh",
                    "/usr/lib/git-core/git-remote-http"),
           host_trees=("/usr/lib/git-core", "/usr/share/git-core"),
           dirs={"/home/argocd": 0o777, "/app/config/ssh": 0o755, "/app/config/tls": 0o755,
                 "/app/config/gpg/source": 0o755, "/app/config/gpg/keys": 0o755},
           users=(("argocd", 999),), user="999", workdir="/home/argocd",
           env=(PATH_ENV, "HOME=/home/argocd", "USER=argocd")),
    Recipe("sample-app", SAMPLE_APP, {"/www/metrics": Source("built", "sample-app-metrics")},
           entrypoint=("httpd", "-f", "-v", "-p", "8080", "-h", "/www"), user=NOBODY,
           env=(PATH_ENV,), ports=("8080/tcp",)),
    Recipe("redis", REDIS, {"/usr/local/bin/redis-server": host("/usr/bin/redis-server")},
           libs_of=("/usr/local/bin/redis-server",), dirs={"/data": 0o777},
           users=(("redis", 999),), entrypoint=("redis-server",), workdir="/data",
           env=(PATH_ENV,), ports=("6379/tcp",)),
    # Prometheus from its module (Debian's leaves Kubernetes service discovery out);
    # promtool from Debian, the same 2.42.
    Recipe("prometheus", PROMETHEUS,
           {"/bin/prometheus": tool("prometheus-server", "prometheus"),
            "/bin/promtool": host("/usr/bin/promtool")},
           libs_of=("/bin/promtool",), dirs={"/prometheus": 0o777, "/data": 0o777,
                                             "/etc/prometheus": 0o755},
           entrypoint=("/bin/prometheus",),
           cmd=("--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus"),
           user=NOBODY, workdir="/prometheus", env=(PATH_ENV,), ports=("9090/tcp",)),
    # Debian's Alertmanager reads its default notification templates from disk.
    Recipe("alertmanager", ALERTMANAGER,
           {"/bin/alertmanager": host("/usr/bin/prometheus-alertmanager"),
            "/bin/amtool": host("/usr/bin/amtool"),
            **{f"/usr/share/prometheus/alertmanager/{t}.tmpl": host(
                f"/usr/share/prometheus/alertmanager/{t}.tmpl") for t in ("default", "email")}},
           libs_of=("/bin/alertmanager",), dirs={"/alertmanager": 0o777,
                                                 "/etc/alertmanager": 0o755},
           entrypoint=("/bin/alertmanager",),
           cmd=("--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager"),
           user=NOBODY, workdir="/alertmanager", env=(PATH_ENV,), ports=("9093/tcp",)),
)}

# What the real node itself runs (the rest are the platform's, for the pods backend).
NODE_IMAGES = ("pause", "coredns", "local-path-provisioner", "busybox")
# What a kind node holds before kubeadm runs (`harness images node-image`).
KIND_NODE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                    "kube-proxy", "etcd", *NODE_IMAGES)


def select(only: list[str] | None) -> list[Recipe]:
    if not only:
        return list(RECIPES.values())
    unknown = [k for k in only if k not in RECIPES]
    if unknown:
        from harness.errors import HarnessError

        raise HarnessError(f"unknown image(s): {', '.join(unknown)}; "
                           f"known: {', '.join(RECIPES)}")
    return [RECIPES[k] for k in only]
