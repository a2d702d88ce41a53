"""Reading a handler's code for the OpenAPI document: what it validates, filters, reads and answers.

`read_handler` walks the handler's bytecode and the Postroom functions it calls (up to MAX_DEPTH
levels: handler → its helpers → intake functions → their parts) and collects: the first pydantic
model validated next to `validate`/`parse_body`/`model_validate` (the request body), the listing
`Filter` tuples it applies, query parameters read with `query_int`/`query_bool`/
`request.query.get("x")`, the success status constants it uses, and every name it refers to
(`paginate`, `multipart`, `json_response`, `HTTPSeeOther`, ...).
"""

from __future__ import annotations

import dis
import inspect
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pydantic

from postroom.web.listing import Filter

_VALIDATORS = {"validate", "parse_body", "model_validate"}
SUCCESS_CODES = (200, 201, 202, 204, 303)
MAX_DEPTH = 3


@dataclass
class Findings:
    """What reading a handler's code revealed."""

    body: type[pydantic.BaseModel] | None = None
    filters: list[Filter] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)
    query: dict[str, str] = field(default_factory=dict)  # parameter → JSON schema type
    functions: dict[str, Any] = field(default_factory=dict)  # name → every function it calls


# Readers of one query parameter, and the JSON type of what they accept.
_QUERY_READERS = {"query_int": "integer", "query_bool": "boolean", "get": "string"}


def _query_reads(code: types.CodeType) -> dict[str, str]:
    """Parameters read as `query_int(request, "x")`, `query_bool(…)` or `request.query.get("x")`."""
    found: dict[str, str] = {}
    pending: str | None = None
    window = 0
    previous = None
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_METHOD", "LOAD_ATTR") and (
            ins.argval in ("query_int", "query_bool")
            or (ins.argval == "get" and previous == "query")
        ):
            # `.get(name, "")` must not yield "": the key has to be the very next constant.
            pending, window = _QUERY_READERS[ins.argval], 1 if ins.argval == "get" else 3
        elif pending and ins.opname == "LOAD_CONST" and isinstance(ins.argval, str) and ins.argval:
            found.setdefault(ins.argval, pending)
            pending = None
        elif pending:
            window -= 1
            if window <= 0 or ins.opname.startswith("CALL"):
                pending = None
        previous = ins.argval if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") else None
    return found


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _is_model(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, pydantic.BaseModel)


def _read_code(code: types.CodeType, scope: dict[str, Any], found: Findings) -> list[Any]:
    """Record one code object's findings; return the module functions it calls."""
    called = []
    names = set(code.co_names)
    for param, kind in _query_reads(code).items():
        found.query.setdefault(param, kind)
    found.names |= names
    found.statuses |= {c for c in code.co_consts if type(c) is int and c in SUCCESS_CODES}
    validates = bool(names & _VALIDATORS)
    # `qm.QueueBody` compiles to the names `qm` and `QueueBody`: resolve through our modules too.
    modules = [
        vars(value)
        for value in (scope.get(n) for n in code.co_names)
        if inspect.ismodule(value) and value.__name__.startswith("postroom.")
    ]
    for name in code.co_names:
        value = scope.get(name)
        for namespace in modules:
            if value is not None:
                break
            value = namespace.get(name)
        if found.body is None and validates and _is_model(value):
            found.body = value
        elif isinstance(value, tuple | list) and value and isinstance(value[0], Filter):
            found.filters.extend(f for f in value if f not in found.filters)
        elif inspect.isfunction(value):
            called.append(value)
            found.functions.setdefault(name, value)
    return called


def read_handler(handler: Callable[..., Any]) -> Findings:
    """Follow a handler into the functions of its module and Postroom's it calls (MAX_DEPTH deep)."""
    found = Findings()
    home = getattr(handler, "__module__", "")
    pending: list[tuple[Any, int]] = [(inspect.unwrap(handler), 0)]
    seen: set[Any] = set()
    while pending:
        func, depth = pending.pop(0)
        if func in seen or not hasattr(func, "__code__"):
            continue
        seen.add(func)
        for code in _code_objects(func.__code__):
            for callee in _read_code(code, func.__globals__, found):
                where = callee.__module__ or ""
                if depth < MAX_DEPTH and (where == home or where.startswith("postroom.")):
                    pending.append((callee, depth + 1))
    return found
