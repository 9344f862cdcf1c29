"""Reading the policy YAML: data for validation, nodes for line numbers.

The text is composed once into a node tree (which keeps every node's line)
and constructed from it, so a problem's path can be mapped back to the line
it is on. Duplicate keys, which plain YAML loading silently resolves to the
last one, are reported as problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policies.problems import Finding, Loc, PolicyError, PolicyProblem


@dataclass(frozen=True)
class Parsed:
    """The constructed data and the node tree it came from (None: empty file)."""

    data: object
    root: Node | None


def parse(text: str, source: str) -> Parsed:
    """Compose and construct `text`; a YAML syntax error raises PolicyError with its line."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise PolicyError([_syntax_problem(exc, source)]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyProblem(source, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return Parsed(data, root)


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> PolicyProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    return PolicyProblem(source, "", f"invalid YAML: {_yaml_reason(exc)}", line)


def _yaml_reason(exc: yaml.MarkedYAMLError) -> str:
    problem, context = exc.problem or "unreadable", exc.context
    if not context:
        return problem
    if problem.startswith("but "):
        return f"{context}, {problem}"
    start, mark = exc.context_mark, exc.problem_mark
    if start is not None and mark is not None and start.line != mark.line:
        return f"{problem} ({context} that starts on line {start.line + 1})"
    return f"{problem} ({context})"


def _entry(node: Node, segment: str | int) -> tuple[Node, Node] | None:
    """The (key or item, value) node for one path segment, if the node has it."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(segment):
                return key, value
    items = node.value if isinstance(node, SequenceNode) else []
    if isinstance(segment, int) and 0 <= segment < len(items):
        item: Node = items[segment]
        return item, item
    return None


def position_of(root: Node | None, loc: Loc) -> tuple[int, int] | None:
    """Line and column (1-based) of the deepest node along `loc` (a mapping entry's key)."""
    if root is None:
        return None
    node, mark = root, root.start_mark
    for segment in loc:
        found = _entry(node, segment)
        if found is None:
            break
        mark, node = found[0].start_mark, found[1]
    return mark.line + 1, mark.column + 1


def line_of(root: Node | None, loc: Loc) -> int | None:
    """The line of the deepest node along `loc` (a mapping entry's key line)."""
    position = position_of(root, loc)
    return position[0] if position else None


def node_at(root: Node | None, loc: Loc) -> Node | None:
    """The value node at `loc`, or None when the path is not in the tree."""
    node = root
    for segment in loc:
        found = _entry(node, segment) if node is not None else None
        if found is None:
            return None
        node = found[1]
    return node


def duplicate_keys(root: Node | None) -> list[Finding]:
    """A finding for every mapping key defined twice in the same mapping."""
    return [] if root is None else list(_duplicates(root, ()))


def _duplicates(node: Node, loc: Loc) -> Iterator[Finding]:
    if isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, (*loc, i))
    if not isinstance(node, MappingNode):
        return
    first: dict[str, int] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) else None
        if name is not None and name in first:
            reason = f"duplicate key '{name}' (first on line {first[name]}; YAML keeps the last)"
            yield Finding((*loc, name), reason, key.start_mark.line + 1)
        elif name is not None:
            first[name] = key.start_mark.line + 1
        yield from _duplicates(value, (*loc, name) if name is not None else loc)
