"""The local world: the embedded default, one machine, no AWS account and no Docker engine.

``backend.LocalBackend`` composes the pieces in this package (sqlite registry, pipeline
interpreter, router and blue/green servers on 127.0.0.1, monitoring); state lives in ``.mlops/``.
Each module imports only ``ci_scripts.backends.base`` and its siblings, never the aws package.
"""
