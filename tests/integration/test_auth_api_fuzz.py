"""schemathesis against the server's own OpenAPI schema, for a bounded number of generated requests per
operation (valid and invalid ones), through a real key: no answer is a 5xx and every documented answer
matches its schema. (schemathesis' pytest plugin does not run on this pytest; hypothesis drives it here.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.generation import GenerationMode

from .conftest import make_settings, serving

KEY = "fuzz-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = 5  # per operation and mode: the ~40 operations take ~20 s on two cores
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    with serving(make_settings(tmp_path_factory.mktemp("fuzz"), api_key=KEY)) as endpoints:
        schema = schemathesis.openapi.from_url(f"{endpoints.base_url}/openapi.json", headers=AUTH)
        # a generated job could be a real training run: the jobs API is fuzzed by its own tests' inputs only
        yield schema.exclude(path="/api/v1/jobs", method="POST")


def test_no_server_errors_and_no_schema_violations(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not an empty schema
    for operation in operations:
        # invalid data only where the schema can be violated (a JSON body); a free string path cannot be
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if len(operation.body) else [])
        for mode in modes:

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=AUTH, timeout=30, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
