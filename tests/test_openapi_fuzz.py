"""The JSON API against its own schema, fuzzed by schemathesis: every operation, valid and invalid input, checked
for no 500, responses that conform to the schema (bodies, status codes, content types), and invalid input refused.

Deterministic (derandomized) and bounded (MAX_EXAMPLES an operation) so that it runs the same way every time.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app

MAX_EXAMPLES = 40

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case):
    # A command line's grammar is the simulated shell's, which no JSON schema states: a schema-valid string can be
    # a wrong command, answered 400 (documented, with the programs that exist). Every other check applies.
    excluded = [positive_data_acceptance] if case.operation.path == "/api/runs" else []
    case.call_and_validate(excluded_checks=excluded)
