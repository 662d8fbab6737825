"""A fast "is this instance valid?" for the plain schemas most collections declare.

``jsonschema`` stays the authority: it reports every problem, and it alone decides any schema
outside the subset below. But its validation of a valid document costs about 10 µs per
property (for every keyword it builds a generator, and for every property a new validator),
which was a tenth of a POST's CPU for a 10-property document. Most document schemas use only
``type``, ``properties``, ``required``, ``additionalProperties``, ``items``, lengths, bounds,
``pattern``, ``format`` and ``enum``; those compile here into nested closures that answer
valid / not valid with the same semantics: jsonschema's own format checkers, ``re.search`` for
patterns as it does, and its type rules (for JSON values), ``multipleOf``, equality (``1`` is
not ``true``) and uniqueness mirrored from its keyword functions.

``compile_quick`` returns None for a schema it cannot decide exactly: a keyword of the draft
outside the subset anywhere in it (``$ref``, ``allOf``, ``if``, ``patternProperties``,
``unevaluatedProperties`` ...), or a draft other than 2020-12. A caller asks the quick check
first and, when it says "not valid", asks jsonschema for the problems. Hypothesis checks that
the two agree on generated schemas and instances (tests/blueprint/test_quick_check.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from typing import Any

import jsonschema

Check = Callable[[Any], bool]

_DRAFT = jsonschema.Draft202012Validator


def _is_number(instance: Any) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


def _is_integer(instance: Any) -> bool:
    if isinstance(instance, float):
        return instance.is_integer()
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPE_TESTS: dict[str, Check] = {
    "array": lambda instance: isinstance(instance, list),
    "boolean": lambda instance: isinstance(instance, bool),
    "integer": _is_integer,
    "null": lambda instance: instance is None,
    "number": _is_number,
    "object": lambda instance: isinstance(instance, dict),
    "string": lambda instance: isinstance(instance, str),
}
"""The 2020-12 draft's types for JSON values (what the request parser and the driver give:
dict, list, str, int, float, bool, None), as its type checker decides them."""


class _Unsupported(Exception):
    pass


def compile_quick(
    schema: Any, validator: type[Any], format_checker: jsonschema.FormatChecker | None
) -> Check | None:
    """A function telling whether an instance is valid against ``schema`` exactly as
    ``validator`` (with ``format_checker``) would, or None when the schema is outside the
    subset."""
    if validator is not _DRAFT:
        return None
    try:
        return _compile(schema, format_checker)
    except _Unsupported:
        return None


def _compile(schema: Any, formats: jsonschema.FormatChecker | None) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict):
        raise _Unsupported
    acting = [k for k in schema if k in _DRAFT.VALIDATORS]
    if any(k not in _KEYWORDS for k in acting):
        raise _Unsupported
    found = [_KEYWORDS[k](k, schema[k], schema, formats) for k in acting]
    checks = [check for check in found if check is not None]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda instance: all(check(instance) for check in checks)


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _other_keyword(
    name: str, value: Any, schema: dict[str, Any], formats: jsonschema.FormatChecker | None
) -> Check | None:
    if name == "type":
        kinds = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(kind, str) and kind in _TYPE_TESTS for kind in kinds):
            raise _Unsupported  # jsonschema raises UnknownType: let it
        tests = [_TYPE_TESTS[k] for k in kinds]
        if len(tests) == 1:
            return tests[0]
        return lambda instance: any(test(instance) for test in tests)
    if name == "enum":
        options = list(value)
        return lambda instance: any(_equal(option, instance) for option in options)
    if name == "const":
        return lambda instance: _equal(instance, value)
    if name == "minProperties":
        return lambda instance: not isinstance(instance, dict) or len(instance) >= value
    return lambda instance: not isinstance(instance, dict) or len(instance) <= value


def _object_keyword(
    name: str, value: Any, schema: dict[str, Any], formats: jsonschema.FormatChecker | None
) -> Check | None:
    if name == "required":
        names = list(value)
        return lambda instance: not isinstance(instance, dict) or all(n in instance for n in names)
    if name == "properties":
        known = [(key, _compile(sub, formats)) for key, sub in value.items()]

        def properties(instance: Any) -> bool:
            if isinstance(instance, dict):
                for key, check in known:
                    if key in instance and not check(instance[key]):
                        return False
            return True

        return properties
    declared = set(schema.get("properties", {}))
    if value is False:
        return lambda instance: (
            not isinstance(instance, dict) or all(key in declared for key in instance)
        )
    extra = _compile(value, formats)
    if extra is _always:
        return None

    def additional(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        return all(extra(item) for key, item in instance.items() if key not in declared)

    return additional


def _array_keyword(
    name: str, value: Any, schema: dict[str, Any], formats: jsonschema.FormatChecker | None
) -> Check | None:
    if name == "items":
        each = _compile(value, formats)
        return lambda instance: not isinstance(instance, list) or all(each(i) for i in instance)
    if name == "minItems":
        return lambda instance: not isinstance(instance, list) or len(instance) >= value
    if name == "maxItems":
        return lambda instance: not isinstance(instance, list) or len(instance) <= value
    if not value:  # uniqueItems: false
        return None
    return lambda instance: not isinstance(instance, list) or _unique(instance)


def _string_keyword(
    name: str, value: Any, schema: dict[str, Any], formats: jsonschema.FormatChecker | None
) -> Check | None:
    if name == "minLength":
        return lambda instance: not isinstance(instance, str) or len(instance) >= value
    if name == "maxLength":
        return lambda instance: not isinstance(instance, str) or len(instance) <= value
    if name == "pattern":
        search = re.compile(value).search
        return lambda instance: not isinstance(instance, str) or search(instance) is not None
    if formats is None or value not in formats.checkers:
        return None  # jsonschema ignores a format it does not know
    test, raises = formats.checkers[value]

    def conforms(instance: Any) -> bool:
        """``FormatChecker.conforms``, its look-up done once."""
        try:
            return bool(test(instance))
        except raises:
            return False

    return conforms


def _number_keyword(
    name: str, value: Any, schema: dict[str, Any], formats: jsonschema.FormatChecker | None
) -> Check:
    is_number = _TYPE_TESTS["number"]
    if name == "minimum":
        return lambda instance: not is_number(instance) or not instance < value
    if name == "maximum":
        return lambda instance: not is_number(instance) or not instance > value
    if name == "exclusiveMinimum":
        return lambda instance: not is_number(instance) or not instance <= value
    if name == "exclusiveMaximum":
        return lambda instance: not is_number(instance) or not instance >= value
    return lambda instance: not is_number(instance) or _multiple(instance, value)


def _multiple(instance: Any, of: Any) -> bool:
    """jsonschema's ``multipleOf`` (its float path included)."""
    if isinstance(of, float):
        quotient = instance / of
        try:
            return bool(int(quotient) == quotient)
        except OverflowError:
            return (Fraction(instance) / Fraction(of)).denominator == 1
    return not instance % of


def _equal(one: Any, two: Any) -> bool:
    """JSON equality as jsonschema's ``enum``, ``const`` and ``uniqueItems`` see it: ``1`` is
    not ``true``, within arrays and objects too."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, Mapping | Sequence) or isinstance(two, Mapping | Sequence):
        return False
    return bool(_unbool(one) == _unbool(two))


def _unbool(value: Any) -> Any:
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return value


_TRUE = object()
_FALSE = object()


def _unique(items: list[Any]) -> bool:
    """jsonschema's ``uniqueItems``: sorted when the items sort (n log n: a long array of
    numbers or strings must not cost n²), else compared pairwise."""
    try:
        ordered = sorted(_unbool(item) for item in items)
    except TypeError:
        seen: list[Any] = []
        for item in items:
            if any(_equal(item, other) for other in seen):
                return False
            seen.append(item)
        return True
    return not any(_equal(a, b) for a, b in pairwise(ordered))


Builder = Callable[[str, Any, dict[str, Any], jsonschema.FormatChecker | None], Check | None]
_KEYWORDS: dict[str, Builder] = {
    **dict.fromkeys(("properties", "additionalProperties", "required"), _object_keyword),
    **dict.fromkeys(("items", "minItems", "maxItems", "uniqueItems"), _array_keyword),
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), _string_keyword),
    **dict.fromkeys(
        ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
        _number_keyword,
    ),
    **dict.fromkeys(("type", "enum", "const", "minProperties", "maxProperties"), _other_keyword),
}
"""The draft's keywords compiled here, each to the function that builds its check; any other
keyword the draft acts on means no quick check (keywords it ignores, ``title``, ``x-...`` and
the like, are ignored here too)."""
