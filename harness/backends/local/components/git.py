"""The Git server Argo CD pulls from: bare repositories under `<state>/git/repos`, served
over smart HTTP (`git http-backend`) on 127.0.0.1 by harness.daemons.gitserver.

At first start the platform repository `platform.git` is seeded from fixtures/gitops
with one branch per environment (dev, staging, main). In-cluster addresses in the
fixtures (Vault, the Git server itself) are rewritten through the service map, as
`harness apply` does — the repo-server and ESO run on this machine, not in a Pod.
Argo CD's in-cluster destination (https://kubernetes.default.svc) is kept.

With the real node in the environment (the pods backend: Argo CD, ESO and Vault are Pods
that resolve in-cluster names), nothing is rewritten, and the server requires the
credentials in `<state>/git/credentials` (user `heracles`, a random password, 0600), as
a hosted Git server would — Argo CD gets them through `argocd repo add`.

A push is announced to Argo CD's API server as a hosted server's webhook would
(harness.daemons.gitserver): the argocd component writes `<state>/git/webhook.json`
naming its `/api/webhook`, which the server reads at each push.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.backends.local.components.base import Component
from harness.clients.git import git
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import http_ok
from harness.runtime.process import ProcessSpec
from harness.runtime.redact import REDACTOR

REPO = "platform.git"
BRANCHES = ("dev", "staging", "main")
IN_CLUSTER_URL = "http://git.heracles.svc.cluster.local"
USER = "heracles"


class GitServer(Component):
    name = "git"
    port_names = ("git.http",)
    toolchain = ("git",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('git.http')}"

    @property
    def repos(self) -> Path:
        return self.ctx.state.root / "git" / "repos"

    def url(self, repo: str = REPO) -> str:
        return f"{self.address}/{repo}"

    @property
    def in_cluster(self) -> bool:
        """The platform's clients are Pods (on the real node, or in kind): in-cluster
        names resolve."""
        return "node" in self.ctx.components or self.ctx.settings.git_in_cluster

    @property
    def webhook_config(self) -> Path:
        """Where Argo CD (when part of the environment) says where pushes are announced."""
        return self.ctx.state.root / "git" / "webhook.json"

    @property
    def credentials_file(self) -> Path:
        return self.ctx.state.root / "git" / "credentials"

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) the server requires, or None when it requires none."""
        if not self.credentials_file.exists():
            return None
        user, _, password = self.credentials_file.read_text().strip().partition(":")
        REDACTOR.add(password)
        return user, password

    def write_files(self) -> None:
        self.repos.mkdir(parents=True, exist_ok=True)
        if self.in_cluster and not self.credentials_file.exists():
            write_private(self.credentials_file,
                          f"{USER}:{secrets.token_urlsafe(18)}".encode())

    def process_specs(self) -> list[ProcessSpec]:
        argv = [sys.executable, "-m", "harness.daemons.gitserver", f"--root={self.repos}",
                f"--port={self.ctx.port('git.http')}", f"--git={self.bin('git', 'git')}"]
        if self.credentials_file.exists():
            argv.append(f"--auth-file={self.credentials_file}")
        if not self.in_cluster:  # the pods backend's Argo CD is a Pod: its own poll
            argv.append(f"--webhook-config={self.webhook_config}")
        return [self.spec("git-server", argv, http_ok(f"{self.address}/healthz"))]

    def service_aliases(self) -> dict[str, str]:
        return {} if self.in_cluster else {IN_CLUSTER_URL: self.address}

    def configure(self) -> None:
        if not (self.repos / REPO).exists():
            self.seed(self.ctx.settings.fixtures_dir / "gitops", REPO)

    def seed(self, source: Path, repo: str, branches: tuple[str, ...] = BRANCHES,
             rewrite: dict[str, str] | None = None, replace: bool = False) -> str:
        """A bare repo whose branches all start as `source`, with the service map (and
        `rewrite`: e.g. a customer's own repoURL -> this server) applied to every YAML
        file. Returns the repo's URL."""
        if not source.is_dir():
            raise HarnessError(f"{source}: not a directory to seed {repo} from")
        bare = self.repos / repo
        if replace:
            shutil.rmtree(bare, ignore_errors=True)
        git("init", "-q", "--bare", str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        with tempfile.TemporaryDirectory(prefix="heracles-seed-") as tmp:
            work = Path(tmp) / "w"
            shutil.copytree(source, work, ignore=shutil.ignore_patterns(".git"))
            self.localize(work, rewrite)
            git("init", "-q", "-b", "main", cwd=work)
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", f"seeded from {source}", cwd=work)
            for branch in branches:
                git("push", "-q", "--force", str(bare), f"HEAD:refs/heads/{branch}",
                    cwd=work)
        return self.url(repo)

    def rewrite_addresses(self, rewrite: Callable[[str], str]) -> dict[str, list[str]]:
        """`rewrite` (old local addresses -> new) over every YAML file of every branch
        of every repo (Argo CD's child Applications carry the Git URL, stores the Vault
        URL); one commit per branch that changed. Returns repo -> branches rewritten."""
        out: dict[str, list[str]] = {}
        for bare in sorted(p for p in self.repos.glob("*.git") if p.is_dir()):
            heads = git("for-each-ref", "--format=%(refname:short)", "refs/heads",
                        cwd=bare).split()
            for branch in heads:
                with tempfile.TemporaryDirectory(prefix="heracles-repoint-") as tmp:
                    work = Path(tmp) / "w"
                    git("clone", "-q", "--branch", branch, str(bare), str(work))
                    changed = False
                    for path in sorted(work.rglob("*.y*ml")):
                        if ".git" in path.parts:
                            continue
                        text = path.read_text()
                        if (new := rewrite(text)) != text:
                            path.write_text(new)
                            changed = True
                    if changed:
                        git("commit", "-q", "-am", "heracles: local addresses moved",
                            cwd=work)
                        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
                        out.setdefault(bare.name, []).append(branch)
        return out

    def service_map(self) -> dict[str, str]:
        """What fixtures committed to Git need rewritten (Argo CD's destination kept);
        nothing when the platform runs in-cluster."""
        if self.in_cluster:
            return {}
        keep = "https://kubernetes.default.svc"  # Argo CD's in-cluster destination
        mapped = {k: v for k, v in self.ctx.service_map().items() if not k.startswith(keep)}
        return {IN_CLUSTER_URL: self.address, **mapped}

    def localize(self, tree: Path, rewrite: dict[str, str] | None = None) -> None:
        mapping = {**self.service_map(), **(rewrite or {})}
        for path in sorted(tree.rglob("*.y*ml")):
            text = path.read_text()
            for remote, local in sorted(mapping.items(), key=lambda kv: len(kv[0]),
                                        reverse=True):
                text = text.replace(remote, local)
            path.write_text(text)
