"""Small servers the harness runs as processes of an environment (`python -m
harness.daemons.<name>`): the Git smart-HTTP server, Alertmanager's webhook receiver and
the scheduled-snapshot process. Each is supervised, reaped and logged like any other
component process."""
