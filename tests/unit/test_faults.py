"""The fault plan's watch rates and its guarantee that every kind fires (pure, no server)."""

from __future__ import annotations

import collections

from tests.realk8s.faults import KINDS, FaultPlan


def requests(plan: FaultPlan, n: int) -> list[str | None]:
    """A mix like an operator's: mostly gets and updates, a watch now and then."""
    out = []
    for i in range(n):
        action = "watch" if i % 25 == 0 else ("update" if i % 3 else "get")
        out.append(plan.pick("operator", action, action == "watch"))
    return out


def test_without_guarantee_or_watch_rates_watches_seldom_fault() -> None:
    # What the soak saw before: 5 % of requests, few of them watches: no cut, no 410.
    plan = FaultPlan(rate=0.05, seed=3)
    requests(plan, 100)
    assert plan.injected["cut"] + plan.injected["410"] == 0


def test_the_guarantee_injects_every_kind_early_and_once_beyond_the_rates() -> None:
    for seed in range(20):
        plan = FaultPlan(rate=0.0, seed=seed, guarantee=True)
        picks = requests(plan, 200)  # 8 watches, 64 gets, 128 updates
        assert plan.missing() == [], seed
        assert collections.Counter(p for p in picks if p) == {k: 1 for k in KINDS}, seed
    again = FaultPlan(rate=0.0, seed=7, guarantee=True)
    assert requests(again, 200) == requests(FaultPlan(rate=0.0, seed=7, guarantee=True), 200)


def test_watch_rates() -> None:
    plan = FaultPlan(rate=0.0, seed=1, watch_cut_rate=0.5, gone_rate=0.25)
    picks = [plan.pick("operator", "watch", True) for _ in range(400)]
    assert 60 < picks.count("410") < 140  # a quarter of the resumed watches
    assert 100 < picks.count("cut") < 200  # half of the rest
    fresh = [plan.pick("operator", "watch", False) for _ in range(200)]
    assert "410" not in fresh  # only a resumed watch can be too old
    assert [plan.pick("worker", "watch", True) for _ in range(50)] == [None] * 50
    assert plan.pick("operator", "update", True) is None  # the rates are for watches only


def test_fault_plan_is_seeded_and_targets_its_identities() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(rate=0.2, seed=seed)
        return [plan.pick("operator", "update", True) for _ in range(200)]

    assert run(1) == run(1) and run(1) != run(2)
    picks = [p for p in run(1) if p]
    assert 20 < len(picks) < 60 and set(picks) <= {"429", "500", "409"}
    plan = FaultPlan(rate=1.0)
    assert plan.pick("worker", "get", False) is None
    assert plan.pick("operator", "get", False) in {"429", "500"}
    assert {plan.pick("operator", "watch", True) for _ in range(200)} == {
        "429",
        "500",
        "cut",
        "410",
    }
