"""A working copy of a repository on the harness's Git server: commit, branch, merge,
push — real git over smart HTTP (scenarios, drills, `harness git`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import HarnessError

NAMESPACE = "argocd"


AUTHOR = ["-c", "user.name=heracles-harness", "-c", "user.email=harness@heracles.local",
          "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    result = subprocess.run(["git", *AUTHOR, *args], cwd=cwd, capture_output=True,
                            text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(cwd or "/"),
                                 "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
    if check and result.returncode != 0:
        raise HarnessError(f"git {' '.join(args[:3])} failed: {result.stderr.strip()[-400:]}")
    return result.stdout


class Workspace:
    """A clone of a repository on the harness's Git server."""

    def __init__(self, url: str, path: Path, branch: str = "dev") -> None:
        self.url = url
        self.path = path
        if not (path / ".git").exists():
            git("clone", "-q", "--branch", branch, url, str(path))
        else:
            self.checkout(branch)

    def run(self, *args: str) -> str:
        return git(*args, cwd=self.path)

    def checkout(self, branch: str) -> None:
        self.run("fetch", "-q", "origin")
        self.run("checkout", "-q", "-B", branch, f"origin/{branch}")

    def write(self, relpath: str, text: str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def read(self, relpath: str) -> str:
        return (self.path / relpath).read_text()

    def remove(self, relpath: str) -> None:
        self.run("rm", "-q", relpath)

    def commit(self, message: str) -> str:
        """Commit everything changed; returns the new commit's sha."""
        self.run("add", "-A")
        self.run("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def push(self, branch: str | None = None) -> str:
        branch = branch or self.run("rev-parse", "--abbrev-ref", "HEAD").strip()
        self.run("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.head()

    def merge(self, source: str, into: str, message: str | None = None) -> str:
        """Promotion: merge origin/<source> into <into> and push it."""
        self.checkout(into)
        self.run("merge", "-q", "--no-ff", "-m", message or f"promote {source} to {into}",
                 f"origin/{source}")
        return self.push(into)

    def remote_head(self, branch: str) -> str:
        out = self.run("ls-remote", "origin", f"refs/heads/{branch}")
        if not out.strip():
            raise HarnessError(f"branch {branch} does not exist on {self.url}")
        return out.split()[0]
