"""Update operators applied to bodies."""

from __future__ import annotations

from typing import Any

import pytest

from datastore.errors import BadRequest
from datastore.query.updates import apply_update

BODY = {"n": 1, "tags": ["a", "b"], "o": {"x": 1}, "s": "t"}


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({"n": 5}, {**BODY, "n": 5}),
        ({"$set": {"o.y": 2}}, {**BODY, "o": {"x": 1, "y": 2}}),
        ({"$set": {"new.deep": 1}}, {**BODY, "new": {"deep": 1}}),
        ({"$unset": {"o.x": ""}}, {**BODY, "o": {}}),
        ({"$inc": {"n": 2, "m": 1}}, {**BODY, "n": 3, "m": 1}),
        ({"$inc": {"n": 0.5}}, {**BODY, "n": 1.5}),
        ({"$push": {"tags": "c"}}, {**BODY, "tags": ["a", "b", "c"]}),
        ({"$push": {"tags": {"$each": ["c", "d"]}}}, {**BODY, "tags": ["a", "b", "c", "d"]}),
        ({"$addToSet": {"tags": {"$each": ["a", "z"]}}}, {**BODY, "tags": ["a", "b", "z"]}),
        ({"$pull": {"tags": "a"}}, {**BODY, "tags": ["b"]}),
        ({"$pullAll": {"tags": ["a", "b"]}}, {**BODY, "tags": []}),
        ({"$pop": {"tags": 1}}, {**BODY, "tags": ["a"]}),
        ({"$pop": {"tags": -1}}, {**BODY, "tags": ["b"]}),
        ({"$rename": {"s": "t2"}}, {"n": 1, "tags": ["a", "b"], "o": {"x": 1}, "t2": "t"}),
    ],
)
def test_operators(update: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_update(BODY, update) == expected
    assert BODY == {"n": 1, "tags": ["a", "b"], "o": {"x": 1}, "s": "t"}


@pytest.mark.parametrize(
    ("update", "name"),
    [
        ({"$set": {"a": 1}, "b": 2}, "body"),
        ({"$inc": {"s": 1}}, "$inc.s"),
        ({"$inc": {"n": "1"}}, "$inc.n"),
        ({"$push": {"s": 1}}, "$push.s"),
        ({"$bogus": {"a": 1}}, "$bogus"),
        ({"$set": {}}, "$set"),
        ({"$set": {"s.x": 1}}, "$set.s.x"),
        ({"$pop": {"tags": 2}}, "$pop.tags"),
        ({"$set": {"a.$b": 1}}, "$set.a.$b"),
        ({"$inc": {"n": 2**63 - 1}}, "$inc.n"),
        ({"$inc": {"m": 1, "f": -1e308, "n": 2**63 - 1}}, "$inc.n"),
        ({"$inc": {"f": 1e308}}, "$inc.f"),
    ],
)
def test_errors(update: dict[str, Any], name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        apply_update({**BODY, "f": 1e308}, update)
    assert caught.value.invalid_params[0].name == name
