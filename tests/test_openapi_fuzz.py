"""Property-based fuzzing of the whole merged OpenAPI document (Schemathesis on Hypothesis).

Every operation the gateway documents (its own and every service's) gets generated requests, valid
and invalid by its schema, sent authenticated (as an admin, so admin operations are exercised too)
to the embedded platform in this process. Each response must be no server error, have a documented
status code and content type, and match the documented schema. Generation is derandomised, so a run
is repeatable; ``BIO_FUZZ_EXAMPLES`` (default 15 per operation) bounds the time: about a minute on
two cores.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis  # requirements-test.txt: make test installs it
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bio_gateway.security.passwords import set_rounds_for_tests
from bio_testing.gateway import PASSWORD, UNLIMITED, answer_500_on_crash, embedded_gateway

EXAMPLES = int(os.environ.get("BIO_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BASE = "http://testserver"
# Operations that fail on this branch because of service code another room is fixing (issue 12);
# strict, so the mark has to go once the fix is merged.
KNOWN: dict[str, str] = {}  # the offset overflows of the lists were fixed by p1-shape, fp-room and fr-room

set_rounds_for_tests(4)
_VAR = Path(tempfile.mkdtemp(prefix="bio-fuzz-"))
atexit.register(shutil.rmtree, _VAR, True)
APP = embedded_gateway(_VAR / "var", **UNLIMITED)
SCHEMA = schemathesis.openapi.from_dict(APP.openapi())


def _operations() -> dict[str, APIOperation]:
    operations = {}
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the gateway's OpenAPI document has an operation schemathesis cannot read
        operation = result.ok()
        operations[operation.label] = operation
    return operations


OPERATIONS = _operations()


def _params() -> list:
    return [pytest.param(label, marks=[pytest.mark.xfail(strict=True, reason=KNOWN[label])] if label in KNOWN else [],
                         id=label) for label in OPERATIONS]


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[object, dict[str, str]]]:
    app = answer_500_on_crash(APP)
    with schemathesis_asgi.get_client(app) as client:  # starts the app's lifespan (models, job threads)
        APP.state.accounts.ensure_admin("fuzz-admin@example.org", PASSWORD)
        r = client.post(f"{BASE}/api/v1/auth/login", data={"username": "fuzz-admin@example.org", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield app, {"Authorization": f"Bearer {r.json()['access_token']}"}
    schemathesis_asgi.shutdown_lifespans()


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) >= 60, sorted(OPERATIONS)
    prefixes = {label.split()[1].split("/")[3] for label in OPERATIONS}
    assert {"auth", "admin", "fingerprint", "faces", "verify", "contours"} <= prefixes


@pytest.mark.parametrize("label", _params())
def test_operation_conforms_to_the_document(platform, label):
    app, auth = platform
    operation = OPERATIONS[label]
    strategy = (operation.as_strategy(schemathesis.GenerationMode.POSITIVE)
                | operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=strategy)
    def fuzz(case) -> None:
        response = case.call(app=app, headers=auth, base_url=BASE)
        case.validate_response(response, checks=CHECKS, headers=auth)

    fuzz()
