"""A griffe extension (mkdocs.yml, mkdocstrings' ``extensions``): Sphinx roles in docstrings.

cnnstep's docstrings are numpydoc, whose cross-references are Sphinx roles (``:func:`fit```,
``:class:`~cnnstep.nn.layers.base.Layer```). mkdocstrings renders Markdown, where a role would
show as its raw text, so each role becomes an *optional* cross-reference: a link when the object
it names is rendered somewhere on the site, the code text alone otherwise (never a warning, so a
docstring that names an internal function does not break ``mkdocs build --strict``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|data|meth|attr|exc|obj|const):`(~?)([^`<>]+)`")


def _resolve(obj: Any, target: str) -> str:
    """The canonical path ``target`` names, seen from ``obj`` (relative names too), or
    ``target`` itself when it cannot be found."""
    target = target.strip().rstrip("()")
    scopes = []
    scope = obj
    while scope is not None:  # the object, its class, its module, its packages
        scopes.append(scope)
        scope = scope.parent
    if target.startswith("."):
        target = obj.module.path.rsplit(".", 1)[0] + target
    for candidate in [target, *(f"{s.path}.{target}" for s in scopes)]:
        root = obj.package
        if not candidate.startswith(root.path + "."):
            continue
        try:
            found = root[candidate[len(root.path) + 1:]]
            return str(getattr(found, "final_target", found).path)
        except Exception:  # noqa: BLE001 - an alias we cannot follow, a missing name: keep text
            continue
    return target


def rewrite(obj: Any, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, target = match.group(1), match.group(2)
        shown = target.lstrip(".").rstrip("()").split(".")[-1] if short else target
        return (f'<autoref identifier="{_resolve(obj, target)}" optional>'
                f"<code>{shown}</code></autoref>")

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Turn ``:role:`target``` into optional cross-references in every docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[Any] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = rewrite(obj, obj.docstring.value)
            stack += [m for m in obj.members.values() if not m.is_alias]
