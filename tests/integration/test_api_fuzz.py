"""Schemathesis against the HTTP API's own OpenAPI schema: no generated request gets a 500.

Requests are generated from the schema (search parameters, event bodies, dead-letter ids) and
sent in-process to the ASGI app, which talks to the real engine and Redis of the test stack.
Only server errors fail the test: a 4xx is the API refusing bad input, as it should.
"""
from __future__ import annotations

from dataclasses import replace

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import Stack

API_KEY = "fuzz-key"
EXAMPLES = 25  # per operation


def test_no_generated_request_gets_a_server_error(stack: Stack):
    from service.http import create_app
    from system import System

    from query_rewriter.search import SearchRequest

    system = System(replace(stack.system.settings, api_key=API_KEY, queue_prefix=f"itest-fuzz-{stack.kind}"))
    system.searcher.search(SearchRequest("warm up"))  # load the model before the 10 s request timeout runs
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(system))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/search", "/events", "/dead-letters"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=[not_a_server_error])

        no_server_error()
