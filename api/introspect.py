"""Enumerate the app's HTTP routes with their dependency trees (for the route×role policy test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


@dataclass(frozen=True, slots=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    dependant: Any


def iter_api_routes(app: FastAPI) -> Iterator[RouteInfo]:
    """Every APIRoute, whether mounted directly or through included routers."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield RouteInfo(route.path, frozenset(route.methods or ()), route.dependant)
            continue
        # FastAPI >= 0.16x includes routers lazily; their flattened contexts carry path and dependant.
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            continue
        for ctx in contexts():
            if isinstance(getattr(ctx, "original_route", None), APIRoute):
                yield RouteInfo(ctx.path, frozenset(ctx.methods or ()), ctx.dependant)


def guards_of(dependant: Any) -> list[Any]:
    """All dependency callables in a route's tree that carry a `.roles` set."""
    found: list[Any] = []
    stack = [dependant]
    while stack:
        node = stack.pop()
        call = getattr(node, "call", None)
        if call is not None and isinstance(getattr(call, "roles", None), frozenset):
            found.append(call)
        stack.extend(getattr(node, "dependencies", []) or [])
    return found
