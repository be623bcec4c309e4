"""The CRD's CEL rules fit the API server's static cost budget on every supported version.

The estimate (tests/unit/celcost.py) is conservative: string sizes from maxLength, 3 MiB for
every x-kubernetes-int-or-string value (what Kubernetes 1.29-1.33 assume whatever its maxLength),
times the maxItems of every list above the rule. Over budget, the API server refuses the CRD.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit import celcost
from videojobs.crd import build_crd

SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
RULES = list(celcost.walk_rules(SCHEMA))


def test_the_schema_has_rules_to_estimate() -> None:
    assert len(RULES) >= 8
    assert any(r.cardinality == 500 for r in RULES), "rules under the 500-item lists are walked"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.path}:{r.rule[:40]}")
def test_every_rule_fits_the_per_rule_budget(rule: celcost.RuleCost) -> None:
    assert rule.total <= celcost.PER_RULE_LIMIT, (
        f"{rule.path}: {rule.rule!r} costs {rule.expression_cost} x {rule.cardinality} = "
        f"{rule.total:.3g} > {celcost.PER_RULE_LIMIT:.0e}"
    )


def test_all_rules_together_fit_the_per_crd_budget() -> None:
    total = sum(r.total for r in RULES)
    assert total <= celcost.PER_CRD_LIMIT, f"{total:.3g} > {celcost.PER_CRD_LIMIT:.0e}"


_SEGMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {"x-kubernetes-int-or-string": True, "maxLength": 32},
        "end": {"x-kubernetes-int-or-string": True, "maxLength": 32},
        "title": {"type": "string", "maxLength": 200},
    },
}


def test_int_or_string_is_sized_at_3_mib_whatever_its_max_length() -> None:
    """The estimate that refused the old rules: a matches() on an int-or-string time."""
    rule = "self.start.matches('^[0-9]{2}:[0-9]{2}:[0-9]{2}$')"
    # ceil(0.1 * (3 MiB + 1)) * ceil(0.25 * 28 characters of regex), plus self and .start
    assert celcost.expression_cost(rule, _SEGMENT) == 314573 * 7 + 2
    assert celcost.expression_cost("self.end > self.start", _SEGMENT) == 314573 + 4
    # a plain string uses its maxLength: ceil(0.1 * 200) + self + .title
    assert celcost.expression_cost("self.title == 'x'", _SEGMENT) == 1 + 2


def test_cardinality_multiplies_by_every_list_above() -> None:
    schema = {
        "type": "object",
        "properties": {
            "outer": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {**_SEGMENT, "x-kubernetes-validations": [{"rule": "has(self.end)"}]},
                },
            }
        },
    }
    (rule,) = celcost.walk_rules(schema)
    assert rule.cardinality == 500 and rule.expression_cost == 2


def test_the_old_time_rules_would_be_refused() -> None:
    """The rules this CRD had until 1.29 support was checked: ~3.6e9 each, far over 1e7."""
    clock = "'^[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{3})?$'"
    old = (
        "!((type(self.start) == int && type(self.end) == int) || (type(self.start) == string && "
        f"type(self.end) == string && self.start.matches({clock}) && self.end.matches({clock})))"
        " || self.end > self.start"
    )
    cost = celcost.expression_cost(old, _SEGMENT) * 500
    assert 3e9 < cost < 4e9
