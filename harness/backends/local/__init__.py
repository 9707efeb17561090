"""The local backend: the real binaries as processes on 127.0.0.1. `environment.py`
composes the components per profile (up / attach / down), `record.py` is what the
state file holds, `service_map.py` maps in-cluster addresses to local ones, and
`components/` has one module per component with one lifecycle."""
