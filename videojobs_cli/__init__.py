"""The ``videojobs`` command: the layer above the contract, the worker and the gateway.

``validate``, ``plan`` and ``crd`` need only the contract (:mod:`videojobs`); ``run`` and ``demo``
dispatch to the worker (:mod:`videojobs_worker.local`), ``serve`` to the gateway
(:mod:`videojobs_gateway.serve`). Nothing imports this package: it sits on top of the layers
(docs/architecture.md, the import contracts in pyproject.toml).
"""

from videojobs_cli.main import build_parser, main

__all__ = ["build_parser", "main"]
