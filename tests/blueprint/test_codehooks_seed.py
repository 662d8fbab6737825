"""blueprints/codehooks.yaml is the Codehooks seed with its line breaks restored, nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT = ROOT / "blueprints" / "codehooks.yaml"
SEED = ROOT.parent / "shared" / "seeds" / "000_f62fd3bc93cf60e2.txt"
# sha256 of the seed with every run of whitespace collapsed to one space.
COLLAPSED_SHA256 = "16791899018492ddaeea54eaeb1cb7e0b4ed9bd6d7d2f8fa8cdca44766fdc605"


def collapsed(text: str) -> str:
    return " ".join(text.split())


def test_only_whitespace_differs_from_the_seed() -> None:
    restored = collapsed(BLUEPRINT.read_text())
    assert hashlib.sha256(restored.encode()).hexdigest() == COLLAPSED_SHA256
    if not SEED.exists():
        pytest.skip("the seed file is not beside this checkout")
    assert restored == collapsed(SEED.read_text())


def test_is_valid_openapi_31_with_every_operation() -> None:
    document = yaml.safe_load(BLUEPRINT.read_text())
    validate(document)
    operations = {
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
    }
    assert operations == {
        "listDocuments",
        "createDocument",
        "getDocument",
        "replaceDocument",
        "updateDocument",
        "deleteDocument",
        "updateDocumentsByQuery",
        "deleteDocumentsByQuery",
        "countDocuments",
        "getKeyValue",
        "setKeyValue",
        "deleteKeyValue",
        "incrementKeyValue",
        "decrementKeyValue",
        "enqueueJob",
    }
    assert document["security"] == [{"apiKey": []}]
    limit = document["paths"]["/{collection}"]["get"]["parameters"][3]
    assert (limit["name"], limit["schema"]["default"]) == ("limit", 100)
    assert document["paths"]["/{collection}/_count"]["get"]["description"] == (
        "Return the count of documents in a collection, optionally filtered by a query."
    )
