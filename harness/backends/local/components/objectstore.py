"""The database's backup stores: an S3 store for "region A", a second one for "region B",
and the replication from A to B — SeaweedFS (Apache-2.0; MinIO's server is AGPL-3.0,
which this project does not take in), each region one `weed server` (master, volume,
filer, S3 gateway) on 127.0.0.1, the replication `weed filer.sync` in active-passive mode
(A's changes, deletes included, follow to B, as a bucket replication rule would).

The S3 keys come from Vault through ESO (Secret database/backup-credentials): the store's
identities file is written from that Secret, and rewritten by the backup agent when a
rotation lands (SIGHUP makes SeaweedFS read it again). Telemetry is switched off: nothing
leaves the machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.kube import Kube
from harness.backends.local.components.vault import Vault
from harness.db import credentials
from harness.db.config import BUCKET, write_identities
from harness.errors import HarnessError
from harness.runtime.probes import http_get, http_ok
from harness.runtime.process import ProcessSpec

REGIONS = ("region-a", "region-b")
# A region's consecutive ports, from its base: name -> offset.
OFFSETS = {"master": 0, "master.grpc": 1, "volume": 2, "volume.grpc": 3, "filer": 4,
           "filer.grpc": 5, "s3": 6, "s3.grpc": 7}
STOP_GRACE = 3.0  # seconds a `weed server` gets after SIGTERM (process_specs says why)
# Where a weed server puts the local gRPC socket of each of its servers: fixed by
# SeaweedFS (not configurable), so a killed server leaves its sockets there.
GRPC_SOCKETS = {"master": "master.grpc", "volume": "volume.grpc", "filer": "filer.grpc",
                "s3": "s3.grpc"}


class ObjectStore(Component):
    name = "s3"
    requires = ("eso",)
    port_names = ("s3.region-a", "s3.region-b", "s3.replication")
    port_spans = {"s3.region-a": len(OFFSETS), "s3.region-b": len(OFFSETS)}
    toolchain = ("seaweedfs",)

    def port_of(self, region: str, what: str) -> int:
        return self.ctx.port(f"s3.{region}") + OFFSETS[what]

    def temp_paths(self) -> list[Path]:
        """Where its servers put their local gRPC sockets (GRPC_SOCKETS)."""
        return [Path(f"/tmp/seaweedfs-{server}-grpc-{self.port_of(region, port)}.sock")
                for region in REGIONS for server, port in GRPC_SOCKETS.items()]

    def s3_port(self, region: str = "region-a") -> int:
        return self.port_of(region, "s3")

    def filer_url(self, region: str) -> str:
        return f"http://127.0.0.1:{self.port_of(region, 'filer')}"

    def s3_url(self, region: str) -> str:
        return f"https://localhost:{self.s3_port(region)}"

    @property
    def address(self) -> str:
        return self.s3_url("region-a")

    def endpoints(self) -> dict[str, str]:
        return {f"s3-{r}": self.s3_url(r) for r in REGIONS}

    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "s3"

    def identities_file(self, region: str) -> Path:
        return self._dir / region / "identities.json"

    def process_name(self, region: str) -> str:
        return f"s3-{region}"

    @property
    def cert(self) -> Any:
        return self.ctx.pki.pair("s3")

    def write_files(self) -> None:
        for region in REGIONS:
            (self._dir / region).mkdir(parents=True, exist_ok=True)
        if not self.cert.cert.exists():
            # pgBackRest 2.45 matches the endpoint against DNS names only: `localhost`.
            self.ctx.pki.issue("s3", "localhost", "127.0.0.1")

    def install(self) -> None:
        """The backup keys: into Vault (first time), out through ESO, into the stores'
        identities."""
        vault, kube = self.ctx.require(Vault), self.ctx.require(Kube)
        credentials.ensure_vault_values(vault)
        api = kube.api_client()
        self.apply_external_secrets(api, vault)
        from kubernetes import client

        keys = credentials.backup_keys(client.CoreV1Api(api))
        for region in REGIONS:
            write_identities(self.identities_file(region), keys)

    def apply_external_secrets(self, api: Any, vault: Vault) -> None:
        """The database's store (in-cluster Vault address made local) and its two
        ExternalSecrets."""
        from harness.clients import manifests
        from harness.clients.kube import dynamic_client

        dyn = dynamic_client(api)
        docs = [manifests.Document("<harness: database store>", 1,
                                   credentials.store_object(vault)),
                *manifests.load([credentials.manifest(self.ctx.settings.fixtures_dir)])]
        manifests.validate(docs, dyn)
        manifests.apply(manifests.rewrite(docs, self.ctx.service_map()), dyn)

    def _weed(self, *args: str) -> list[str]:
        """A weed command line logging to stderr only (the process log, redacted): by
        default glog also writes weed.* files into /tmp, outside the state directory."""
        return [self.bin("seaweedfs", "weed"), "-logtostderr=true", *args]

    def _server_argv(self, region: str) -> list[str]:
        p = {what: self.port_of(region, what) for what in OFFSETS}
        return [
            *self._weed("server"),
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self.ctx.state.data(self.process_name(region))}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self.identities_file(region)}",
            f"-s3.cert.file={self.cert.cert}", f"-s3.key.file={self.cert.key}",
            "-master.telemetry=false", "-volume.max=30", "-master.volumeSizeLimitMB=64",
            # One master: an election needs no 10 s timeout (a restart took 15 s to find
            # its leader, 2 s with this); a stopping volume server need not keep
            # heartbeating for 10 s first.
            "-master.electionTimeout=1s", "-volume.preStopSeconds=0",
        ]

    def _takes_writes(self, region: str) -> Any:
        """Ready when its S3 gateway answers AND its master assigns file ids: a master
        restarted on existing data refuses assignments for a warm-up of 15 s (three
        volume-server pulses; not configurable in this version), and every write waits
        until then."""
        s3 = http_ok(f"{self.s3_url(region)}/healthz", ca=self.ctx.pki.ca_cert)
        assign = http_ok(f"http://127.0.0.1:{self.port_of(region, 'master')}/dir/assign")
        return lambda: s3() and assign()

    def _filer(self, region: str) -> str:
        """host:port.grpcPort, as SeaweedFS names a server whose gRPC port is not +10000."""
        return f"127.0.0.1:{self.port_of(region, 'filer')}.{self.port_of(region, 'filer.grpc')}"

    def process_specs(self) -> list[ProcessSpec]:
        specs = []
        for region in REGIONS:
            name = self.process_name(region)
            # On SIGTERM its volume server stops first, then its filer retries flushing
            # its metadata log to a volume nobody can assign any more and gives up
            # (dropping it) after ~15 s: every stop waited out the whole grace. Its stores
            # survive a kill (the drills kill -9 region A), so a short grace loses nothing.
            specs.append(self.spec(
                name, self._server_argv(region), self._takes_writes(region),
                data_dir=self.ctx.state.data(name), after=(), stop_grace=STOP_GRACE))
        metrics = self.ctx.port("s3.replication")
        sync = [*self._weed("filer.sync"),
                f"-a={self._filer('region-a')}", f"-b={self._filer('region-b')}",
                "-isActivePassive", "-a.path=/buckets", "-b.path=/buckets",
                "-metricsIp=127.0.0.1", f"-metricsPort={metrics}"]
        specs.append(self.spec("s3-replication", sync,
                               http_ok(f"http://127.0.0.1:{metrics}/metrics"),
                               after=tuple(self.process_name(r) for r in REGIONS)))
        return specs

    def configure(self) -> None:
        self.ensure_bucket("region-a")

    def shell(self, region: str, command: str, timeout: float = 60) -> str:
        """One `weed shell` command against a region's master (output never logged: it
        can print identities)."""
        master = f"127.0.0.1:{self.port_of(region, 'master')}.{self.port_of(region, 'master.grpc')}"
        out = subprocess.run(self._weed("shell", f"-master={master}"),
                             input=command + "\n", capture_output=True, text=True,
                             timeout=timeout, check=False)
        if out.returncode != 0:
            raise HarnessError(f"weed shell {command.split()[0]} on {region} failed "
                               f"(exit {out.returncode})")
        return out.stdout

    def ensure_bucket(self, region: str) -> None:
        """The backup bucket in `region` (B receives it, and all in it, from A)."""
        from harness.wait import eventually

        def exists() -> bool:
            status, _ = http_get(f"{self.filer_url(region)}/buckets/{BUCKET}/?limit=1")
            return status == 200

        if not exists():
            self.shell(region, f"s3.bucket.create -name {BUCKET}")
        eventually(lambda: exists() or None, timeout=30, error=HarnessError,
                   description=f"bucket {BUCKET} in {region}")

    def wipe_region(self, region: str) -> None:
        """Disaster: the region's store is gone — killed, its data deleted. Started again
        it is an empty store."""
        proc = self.process(self.process_name(region))
        proc.kill()
        proc.wipe_data()

    def status_details(self) -> dict[str, Any]:
        return {"bucket": BUCKET, "regions": {r: self.s3_url(r) for r in REGIONS}}
