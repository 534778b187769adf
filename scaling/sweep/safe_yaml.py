"""Read a YAML file that people write by hand and others may hand you: bounded and strict.

On top of ``yaml.safe_load`` (no tags that build Python objects), :func:`load_yaml` refuses

- a file that is not a readable regular file, or not UTF-8 text;
- a duplicate key in a mapping (YAML says keys are unique; PyYAML keeps the last silently);
- a document whose aliases expand to more than :data:`MAX_NODES` nodes, counted on the
  composed node graph *before* anything is constructed or serialised: a 1 kB "billion laughs"
  (nine anchors of nine aliases each, 9^9 nodes) stops here instead of filling the memory of
  whatever later walks it (``json.dumps`` for a ``run_id``, pydantic, a table);
- recursive aliases (an anchor used inside itself) and nesting too deep to walk.

Each problem is one :class:`ScalingError` line naming the file (and the line where known).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scaling.errors import ScalingError
from scaling.files import check_input_file

#: Most nodes (scalars, sequences, mappings, with every alias expanded) a document may hold.
MAX_NODES = 100_000
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """A document that parses but that we refuse (message says why)."""


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<: *base` may be overridden by explicit keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: SafeLoader reports it
                continue
            if duplicate:
                raise _Refused(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}; "
                               "give each key once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path, *, what: str = "YAML file") -> Any:
    """Parse ``path`` (see the module docstring); raises :class:`ScalingError`."""
    path = check_input_file(path, what=what)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScalingError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as "
                           "UTF-8") from None
    except OSError as exc:
        raise ScalingError(f"cannot read {what} {path}: {exc.strerror}") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node)
        if size > MAX_NODES:
            raise _Refused(f"its aliases expand to more than {MAX_NODES:,} nodes; write the "
                           "values out instead of nesting aliases")
        return loader.construct_document(node)
    except _Refused as exc:
        raise ScalingError(f"{what} {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ScalingError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ScalingError(f"{what} {path} is nested too deeply") from None
    finally:
        loader.dispose()


def expanded_size(root: yaml.Node, *, limit: int = MAX_NODES) -> int:
    """Nodes in ``root`` with every alias expanded (a shared node counts each time it is used);
    stops counting past ``limit``. Raises :class:`_Refused` on a recursive alias."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Refused(f"recursive alias at line {node.start_mark.line + 1}")
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            active.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair]
            for child in children:
                total += size(child)
                if total > limit:
                    break
            active.discard(key)
        sizes[key] = total
        return total

    return size(root)
