"""HTTP load benchmark against Kinto and a bare-Starlette floor (python -m bench.http)."""
