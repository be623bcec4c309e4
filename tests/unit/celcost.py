"""A conservative static cost estimate of a CRD's CEL rules, as the API server computes it.

The API server refuses a CRD when one ``x-kubernetes-validations`` rule's estimated cost, times
the largest number of times it can run (the ``maxItems`` of every list above it), exceeds
:data:`PER_RULE_LIMIT`, or when all of them together exceed :data:`PER_CRD_LIMIT`
(apiextensions-apiserver, ``StaticEstimatedCostLimit`` / ``StaticEstimatedCRDCostLimit``).

The per-expression model follows cel-go's ``checker/cost.go``: an identifier or a field selection
costs 1, ``has()`` 1, most calls 1 plus their arguments, a comparison or equality
``ceil(0.1 * min(size(lhs), size(rhs)))``, ``matches`` ``ceil(0.1 * (size(str) + 1)) *
ceil(0.25 * size(regex))``, ``contains`` ``ceil(0.1 * size(str)) * ceil(0.1 * size(sub))``,
``startsWith``/``endsWith`` ``ceil(0.1 * size(prefix))``, ``&&``/``||`` the sum of both sides,
``?:`` the condition plus the dearer branch, a macro (``all``, ``exists``, …) the list size times
its body. Sizes come from the schema, conservatively for every supported Kubernetes version:

- a string: its ``maxLength`` (the longest ``enum`` value), else :data:`UNBOUNDED_SIZE`;
- ``x-kubernetes-int-or-string``: always :data:`UNBOUNDED_SIZE` (before 1.34 the estimator
  ignores ``maxLength`` there and sizes the value from the 3 MiB request limit);
- a list: its ``maxItems``, else :data:`UNBOUNDED_SIZE`; an object: its number of properties.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from celpy import celparser
from lark import Token, Tree

PER_RULE_LIMIT = 10_000_000
PER_CRD_LIMIT = 100_000_000
UNBOUNDED_SIZE = 3 * 1024 * 1024
"""What the estimator assumes for a value without a usable bound (the 3 MiB request limit)."""

STRING_FACTOR = 0.1
REGEX_FACTOR = 0.25
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Value:
    """What the estimator knows about an expression's value: its schema and its size."""

    size: int
    schema: Schema | None = None


@dataclass(frozen=True)
class RuleCost:
    """One rule's estimate."""

    path: str
    rule: str
    expression_cost: int
    cardinality: int

    @property
    def total(self) -> int:
        return self.expression_cost * self.cardinality


def value_size(schema: Schema | None) -> int:
    """The largest size of a value of this schema, as the cost estimator sees it."""
    if schema is None:
        return 1
    if schema.get("x-kubernetes-int-or-string"):
        return UNBOUNDED_SIZE
    kind = schema.get("type")
    if kind == "string":
        if schema.get("enum"):
            return max(len(str(v)) for v in schema["enum"])
        return int(schema.get("maxLength", UNBOUNDED_SIZE))
    if kind == "array":
        return int(schema.get("maxItems", UNBOUNDED_SIZE))
    if kind == "object":
        if "properties" in schema:
            return max(1, len(schema["properties"]))
        return int(schema.get("maxProperties", UNBOUNDED_SIZE))
    return 1


def _ceil(x: float) -> int:
    return math.ceil(x)


class _Estimator:
    def __init__(self, self_schema: Schema) -> None:
        self.vars: dict[str, Value] = {
            "self": Value(value_size(self_schema), self_schema),
            "oldSelf": Value(value_size(self_schema), self_schema),
        }

    # Each method returns (cost, value).

    def est(self, node: Tree | Token) -> tuple[int, Value]:
        if isinstance(node, Token):
            return 0, Value(1)
        handler = getattr(self, f"_{node.data}", None)
        if handler is not None:
            return handler(node)
        children = [c for c in node.children if isinstance(c, Tree)]
        if len(children) == 1:
            return self.est(children[0])
        # anything else: every child once, plus one for the operation
        cost = sum(self.est(c)[0] for c in children) + 1
        return cost, Value(1)

    def _expr(self, node: Tree) -> tuple[int, Value]:
        if len(node.children) == 1:
            return self.est(node.children[0])
        cond, yes, no = (self.est(c) for c in node.children)
        return cond[0] + max(yes[0], no[0]), Value(max(yes[1].size, no[1].size))

    def _logical(self, node: Tree) -> tuple[int, Value]:
        if len(node.children) == 1:
            return self.est(node.children[0])
        return sum(self.est(c)[0] for c in node.children), Value(1)

    _conditionalor = _logical
    _conditionaland = _logical

    def _relation(self, node: Tree) -> tuple[int, Value]:
        if len(node.children) == 1:
            return self.est(node.children[0])
        op, rhs = node.children
        assert isinstance(op, Tree)
        lhs_cost, lhs = self.est(op.children[0])
        rhs_cost, right = self.est(rhs)
        if op.data == "relation_in":
            return lhs_cost + rhs_cost + right.size, Value(1)
        return lhs_cost + rhs_cost + _ceil(STRING_FACTOR * min(lhs.size, right.size)), Value(1)

    def _arith(self, node: Tree) -> tuple[int, Value]:
        if len(node.children) == 1:
            return self.est(node.children[0])
        op, rhs = node.children
        assert isinstance(op, Tree)
        lhs_cost, lhs = self.est(op.children[0])
        rhs_cost, right = self.est(rhs)
        size = lhs.size + right.size
        return lhs_cost + rhs_cost + max(1, _ceil(STRING_FACTOR * size)), Value(size)

    _addition = _arith
    _multiplication = _arith

    def _unary(self, node: Tree) -> tuple[int, Value]:
        if len(node.children) == 1:
            return self.est(node.children[0])
        cost, _ = self.est(node.children[-1])
        return cost + 1, Value(1)

    def _literal(self, node: Tree) -> tuple[int, Value]:
        token = node.children[0]
        assert isinstance(token, Token)
        text = str(token)
        if token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return 0, Value(max(0, len(text) - 2))
        return 0, Value(1)

    def _ident(self, node: Tree) -> tuple[int, Value]:
        name = str(node.children[0])
        if name in self.vars:
            return 1, self.vars[name]
        return 1, Value(1)  # a type name (int, string) or an unknown variable

    def _paren_expr(self, node: Tree) -> tuple[int, Value]:
        return self.est(node.children[0])

    def _member_dot(self, node: Tree) -> tuple[int, Value]:
        target, field = node.children
        cost, value = self.est(target)
        return cost + 1, _field(value, str(field))

    def _member_index(self, node: Tree) -> tuple[int, Value]:
        target, index = node.children
        cost, value = self.est(target)
        index_cost, _ = self.est(index)
        item = (value.schema or {}).get("items")
        return cost + index_cost + 1, Value(value_size(item), item)

    def _ident_arg(self, node: Tree) -> tuple[int, Value]:
        name = str(node.children[0])
        args = _args(node.children[1] if len(node.children) > 1 else None)
        if name == "has":
            (arg,) = args
            # has(a.b): the presence test replaces the selection's cost
            inner = _unwrap(arg)
            if isinstance(inner, Tree) and inner.data == "member_dot":
                cost, _ = self.est(inner.children[0])
                return cost + 1, Value(1)
            return self.est(arg)[0] + 1, Value(1)
        costs = [self.est(a) for a in args]
        size = max((v.size for _, v in costs), default=1)
        if name in ("string", "bytes"):
            return sum(c for c, _ in costs) + _ceil(STRING_FACTOR * size), Value(size)
        return sum(c for c, _ in costs) + 1, Value(size if name == "dyn" else 1)

    def _member_dot_arg(self, node: Tree) -> tuple[int, Value]:
        target, method = node.children[0], str(node.children[1])
        args = _args(node.children[2] if len(node.children) > 2 else None)
        target_cost, value = self.est(target)
        if method in MACROS:
            var = _macro_var(args[0])
            item = (value.schema or {}).get("items")
            saved = self.vars.get(var)
            self.vars[var] = Value(value_size(item), item)
            body = sum(self.est(a)[0] for a in args[1:])
            if saved is None:
                del self.vars[var]
            else:
                self.vars[var] = saved
            return target_cost + value.size * (body + 3) + 1, Value(value.size)
        costs = [self.est(a) for a in args]
        arg_cost = sum(c for c, _ in costs)
        if method == "matches":
            regex = costs[0][1].size
            cost = _ceil(STRING_FACTOR * (value.size + 1)) * _ceil(REGEX_FACTOR * regex)
            return target_cost + arg_cost + cost, Value(1)
        if method == "contains":
            sub = costs[0][1].size
            cost = _ceil(STRING_FACTOR * value.size) * _ceil(STRING_FACTOR * sub)
            return target_cost + arg_cost + cost, Value(1)
        if method in ("startsWith", "endsWith"):
            return target_cost + arg_cost + _ceil(STRING_FACTOR * costs[0][1].size), Value(1)
        if method in ("lowerAscii", "upperAscii", "trim", "replace", "split", "join"):
            return target_cost + arg_cost + _ceil(STRING_FACTOR * value.size), Value(value.size)
        return target_cost + arg_cost + 1, Value(1)


def _unwrap(node: Tree | Token) -> Tree | Token:
    """The innermost node of a chain of single-child wrappers."""
    while isinstance(node, Tree) and len(node.children) == 1 and node.data != "ident":
        child = node.children[0]
        if not isinstance(child, Tree):
            break
        node = child
    return node


def _args(exprlist: Tree | Token | None) -> list[Tree | Token]:
    if exprlist is None or not isinstance(exprlist, Tree):
        return []
    return list(exprlist.children)


def _macro_var(arg: Tree | Token) -> str:
    inner = _unwrap(arg)
    if isinstance(inner, Tree) and inner.data == "ident":
        return str(inner.children[0])
    raise ValueError(f"macro variable expected, got {arg}")


def _field(value: Value, name: str) -> Value:
    schema = value.schema or {}
    props = schema.get("properties") or {}
    if name in props:
        return Value(value_size(props[name]), props[name])
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        return Value(value_size(extra), extra)
    return Value(UNBOUNDED_SIZE)


_PARSER: celparser.CELParser | None = None


def expression_cost(rule: str, self_schema: Schema) -> int:
    """The estimated cost of one evaluation of ``rule`` with ``self`` of ``self_schema``."""
    global _PARSER
    if _PARSER is None:
        _PARSER = celparser.CELParser()
    tree = _PARSER.parse(rule)
    cost, _ = _Estimator(self_schema).est(tree)
    return cost


def walk_rules(schema: Schema, path: str = "", cardinality: int = 1) -> Iterator[RuleCost]:
    """Every rule in ``schema`` with its estimated cost and how often it can run."""
    for item in schema.get("x-kubernetes-validations") or []:
        rule = item["rule"]
        yield RuleCost(path or ".", rule, expression_cost(rule, schema), cardinality)
    for name, prop in (schema.get("properties") or {}).items():
        yield from walk_rules(prop, f"{path}.{name}", cardinality)
    if isinstance(schema.get("items"), Mapping):
        below = cardinality * value_size(schema)
        yield from walk_rules(schema["items"], f"{path}[*]", below)
    if isinstance(schema.get("additionalProperties"), Mapping):
        below = cardinality * int(schema.get("maxProperties", UNBOUNDED_SIZE))
        yield from walk_rules(schema["additionalProperties"], f"{path}[*]", below)
