"""Entity names and aliases: which entities a text mentions, matched on normalised word sequences."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from dexter_brain.lexical import STOPWORDS, normalize


class EntityIndex:
    """Maps every name and alias to its canonical entity name and finds mentions in text."""

    def __init__(self, names: Iterable[tuple[str, Iterable[str]]] = ()):
        self.canonical: dict[tuple[str, ...], str] = {}
        self.by_first: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        self.aliases: dict[str, list[str]] = defaultdict(list)
        for name, aliases in names:
            self.add(name, aliases)

    def add(self, name: str, aliases: Iterable[str] = ()) -> None:
        for surface in (name, *aliases):
            key = tuple(normalize(surface).split())
            # A lone stop word ("it", "me") is not a usable alias.
            if not key or (len(key) == 1 and key[0] in STOPWORDS) or key in self.canonical:
                continue
            self.canonical[key] = name
            self.by_first[key[0]].append(key)
            if surface != name:
                self.aliases[name].append(surface)

    def __len__(self) -> int:
        return len(set(self.canonical.values()))

    def mentions(self, text: str) -> set[str]:
        """Canonical names of the entities whose name or an alias occurs in ``text``."""
        tokens = normalize(text).split()
        found: set[str] = set()
        for i, tok in enumerate(tokens):
            for key in self.by_first.get(tok, ()):
                if tuple(tokens[i:i + len(key)]) == key:
                    found.add(self.canonical[key])
        return found

    def main_entity(self, text: str) -> str | None:
        """The entity named by the longest matching surface form in ``text`` (ties: first in text)."""
        tokens = normalize(text).split()
        best, best_len = None, 0
        for i, tok in enumerate(tokens):
            for key in self.by_first.get(tok, ()):
                if len(key) > best_len and tuple(tokens[i:i + len(key)]) == key:
                    best, best_len = self.canonical[key], len(key)
        return best

    def to_json(self) -> list[list]:
        names = sorted(set(self.canonical.values()))
        return [[n, sorted(set(self.aliases.get(n, [])))] for n in names]

    @classmethod
    def from_json(cls, rows: list[list]) -> "EntityIndex":
        return cls((name, aliases) for name, aliases in rows)
