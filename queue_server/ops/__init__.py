"""Operations: Prometheus metrics, structured logs with request ids, backups and restores.

`metrics` holds only the metric objects, so that the bus and the realtime hub can count what
happens inside them without importing anything else of the server; the rest (the `/metrics`
route, the event listener, the sampler, the log setup, backups) is wired in by `app` and `cli`.
"""
