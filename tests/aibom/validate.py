#!/usr/bin/env python3
"""Validates CycloneDX 1.6 JSON documents (Warden's AI-BOMs) against the official schema
with cyclonedx-python-lib's strict JSON validator (no unknown properties, formats checked).

    validate.py FILE...     exit 0 when every file is valid, 1 with the errors otherwise
    validate.py --self-test check that the validator rejects broken documents
"""
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def errors(text):
    """The schema errors of one document, as strings (empty when valid)."""
    found = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    return [] if found is None else [f"{e.data.json_path}: {e.data.message}" for e in found]


def self_test():
    """A validator that accepts everything would make the schema check vacuous: make sure
    it accepts a small valid BOM and rejects each way of breaking it."""
    good = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2025-01-31T12:00:00Z",
            "component": {
                "type": "machine-learning-model",
                "name": "m",
                "hashes": [{"alg": "SHA-256", "content": "a" * 64}],
                "modelCard": {"modelParameters": {"task": "t"}},
            },
        },
    }
    if errors(json.dumps(good)):
        print("self-test: a valid document was rejected:", errors(json.dumps(good)))
        return 1

    def broken(change):
        doc = json.loads(json.dumps(good))
        change(doc)
        return doc

    component = lambda d: d["metadata"]["component"]  # noqa: E731
    cases = {
        "unknown top-level property": lambda d: d.update(extra=1),
        "wrong component type": lambda d: component(d).update(type="ml-model"),
        "short hash": lambda d: component(d)["hashes"][0].update(content="abc"),
        "bad serial": lambda d: d.update(serialNumber="not-a-uuid"),
        "bad timestamp": lambda d: d["metadata"].update(timestamp="yesterday"),
        "unknown modelCard field": lambda d: component(d)["modelCard"].update(notes="x"),
        "missing component name": lambda d: component(d).pop("name"),
    }
    failed = [name for name, change in cases.items() if not errors(json.dumps(broken(change)))]
    if failed:
        print("self-test: broken documents accepted:", ", ".join(failed))
        return 1
    print(f"self-test: 1 valid document accepted, {len(cases)} broken ones rejected")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bad = 0
    for path in argv:
        with open(path, encoding="utf-8") as f:
            found = errors(f.read())
        if found:
            bad += 1
            print(f"{path}: INVALID")
            for e in found:
                print(f"  {e}")
        else:
            print(f"{path}: valid CycloneDX 1.6")
    print(f"{len(argv) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
