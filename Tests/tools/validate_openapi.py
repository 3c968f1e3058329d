"""Validates each service's OpenAPI document against the OpenAPI 3.1 schema; exits 1 naming any that fail."""
import sys

import yaml
from openapi_spec_validator import validate

failures = 0
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as document:
            validate(yaml.safe_load(document))
        print(f"openapi ok: {path}")
    except Exception as error:  # the validator raises several unrelated exception types
        failures += 1
        print(f"openapi INVALID: {path}: {error}", file=sys.stderr)
sys.exit(1 if failures else 0)
