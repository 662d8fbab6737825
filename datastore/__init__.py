"""The blueprint datastore: an OpenAPI blueprint becomes a validated document service."""

import warnings

__version__ = "0.1.0"

# connexion imports starlette.testclient at import time, which warns about httpx on every
# start of the server; the warning concerns test clients, not the datastore.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
