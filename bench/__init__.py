"""Benchmarks, run on demand: python -m bench.<name> --help."""

import datastore  # noqa: F401 - installs the warning filter before connexion/starlette load
