"""What a real Kubernetes API server checks on every request, for the kmock emulator.

``rules`` holds pure functions (metadata limits, patch arithmetic, CRD pruning, schema and CEL
checks, status-subresource semantics, RBAC evaluation); ``faults`` decides which requests get an
injected error. ``tests/mockapi/emulator.py`` applies both to every request it serves.
"""
