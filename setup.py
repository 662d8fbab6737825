"""Packages of the wheel: ``datastore`` and its subpackages, plus the top-level ``migrations/``
folder installed as ``datastore.migrations`` (everything else is in pyproject.toml)."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["datastore", "datastore.*"], exclude=["*.__pycache__"]),
        "datastore.migrations",
        "datastore.migrations.versions",
    ],
    package_dir={"datastore.migrations": "migrations"},
)
