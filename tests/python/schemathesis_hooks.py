"""Hooks of the schemathesis run (tests/python/test_schemathesis.py), loaded through
SCHEMATHESIS_HOOKS: the two rules of the contract that the OpenAPI document's JSON
Schema cannot state, so that schemathesis does not take them for bugs.

- **Integers are JSON integers.** SPEC §2 refuses `3.0` for an integer field, while JSON
  Schema (draft 6 and later) counts `3.0` as an integer, and schemathesis sends such
  numbers as valid ones. :func:`map_body` writes whole numbers as integers.
- **Rules between fields or about the state.** A task cannot depend on itself, an index
  in a batch must name an earlier item, `blocker` comes with blocked and `result` with
  complete, and blocking a task needs a blocker: a schema of one value cannot say
  these. :func:`filter_failure` drops a "schema-valid request rejected" finding only
  when the server's 400 names one of these rules, word for word; any other refusal of a
  schema-valid request still fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

# The messages of the rules between fields (src/rules/plan.rs, src/rules/patch.rs).
RULES_BETWEEN_FIELDS = (
    "cannot depend on itself",
    "must name an earlier item of the batch",
    "blocker is required to block",
    "blocker can only be given when",
    "result can only be given when",
    "blocker cannot be cleared while",
)


def whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_integers(item) for item in value]
    return value


@schemathesis.hook
def map_body(context: HookContext, body: Any) -> Any:
    return whole_numbers_as_integers(body)


@schemathesis.hook
def filter_failure(context: HookContext, failure: Failure, case: Case[Any], response: Response) -> bool:
    if failure.code != "ST202" or response.status_code != 400:
        return True
    try:
        message = json.loads(response.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return True
    return not any(rule in message for rule in RULES_BETWEEN_FIELDS)
