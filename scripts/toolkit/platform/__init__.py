"""The local platform: the service's tracks, the embedded model server, a weighted sticky router
and (when installed) Prometheus, run as plain processes on one machine (see README.md here).

The CLI is `python -m scripts.local_platform`; `scripts.toolkit.traffic.local.LocalBackend` is
the traffic backend over the same functions (`lifecycle` and `tracks`).
"""
