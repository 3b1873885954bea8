"""docs/schema.json: a valid JSON Schema (draft 2020-12) that every shipped recipe's JSON satisfies,
at the schema version mirrorsym writes."""

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import derived

from mirrorsym import shipped_recipes
from mirrorsym._json import SCHEMA_VERSION, dumps, to_json

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_valid_and_versioned():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"] == {"const": SCHEMA_VERSION, "description": "Version of this schema."}


@pytest.mark.parametrize("name", [path.stem for path in shipped_recipes()])
def test_every_recipe_json_validates(name):
    doc = json.loads(dumps(derived(name), timings=True))
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_schema_rejects_what_it_should():
    doc = to_json(derived("egu"))
    for broken in ({**doc, "schema_version": 2}, {k: v for k, v in doc.items() if k != "Q"},
                   {**doc, "status": "fine"}, {**doc, "R": 3}):
        assert not VALIDATOR.is_valid(json.loads(json.dumps(broken)))
