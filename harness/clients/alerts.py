"""What Alertmanager delivered to the harness's webhook receiver, as scenarios see it."""

from __future__ import annotations

import time
from typing import Any, Protocol

from harness.wait import eventually


class Notifications(Protocol):
    """Where delivered notifications are read (the local Alertmanager component's
    receiver file)."""

    def notifications(self) -> list[dict[str, Any]]: ...


class ReceivedAlerts:
    """Notifications received since this object was made (earlier ones are history)."""

    def __init__(self, alertmanager: Notifications) -> None:
        self.alertmanager = alertmanager
        self.since = time.time()

    def notifications(self) -> list[dict[str, Any]]:
        return [n for n in self.alertmanager.notifications() if n["received"] >= self.since]

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification: labels, annotations, status, startsAt..."""
        return [{**a, "received": n["received"]} for n in self.notifications()
                for a in n["payload"].get("alerts", [])]

    def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 60,
                       **labels: str) -> dict[str, Any]:
        def delivered() -> dict[str, Any] | None:
            for alert in self.alerts():
                al = alert.get("labels", {})
                if al.get("alertname") == name and alert.get("status") == state and all(
                        al.get(k) == v for k, v in labels.items()):
                    return alert
            return None

        return eventually(delivered, timeout=timeout, interval=0.1,
                          description=f"alert {name} {state} delivered to the receiver")


def external_secret_not_ready_rule(namespace: str, for_: str = "2m") -> dict[str, Any]:
    """A working replacement for the spec's ExternalSecretsFailure (whose metric does not
    exist, and whose counter would never resolve): ESO's Ready condition gauge, scoped
    to one namespace. Fires while an ExternalSecret fails, resolves once it syncs."""
    return {"alert": "ExternalSecretNotReady", "for": for_,
            "expr": f'externalsecret_status_condition{{condition="Ready",status="False",'
                    f'namespace="{namespace}"}} == 1',
            "labels": {"severity": "warning"},
            "annotations": {"summary": "ExternalSecret {{ $labels.name }} is not Ready"}}
