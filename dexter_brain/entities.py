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
        # First word -> the lengths of the names starting with it, longest first: a text is matched with a
        # few dictionary lookups per word, however many names share a first word ("the ...").
        self._lengths: dict[str, list[int]] = {}
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
            lengths = self._lengths.setdefault(key[0], [])
            if len(key) not in lengths:
                lengths.append(len(key))
                lengths.sort(reverse=True)
            if surface != name:
                self.aliases[name].append(surface)

    def __len__(self) -> int:
        return len(set(self.canonical.values()))

    def mentions(self, text: str) -> set[str]:
        """Canonical names of the entities whose name or an alias occurs in ``text``."""
        tokens = normalize(text).split()
        found: set[str] = set()
        for i, tok in enumerate(tokens):
            for length in self._lengths.get(tok, ()):
                if i + length <= len(tokens):
                    name = self.canonical.get(tuple(tokens[i:i + length]))
                    if name is not None:
                        found.add(name)
        return found

    def main_entity(self, text: str) -> str | None:
        """The entity named by the longest matching surface form in ``text`` (ties: first in text)."""
        tokens = normalize(text).split()
        best, best_len = None, 0
        for i, tok in enumerate(tokens):
            for length in self._lengths.get(tok, ()):
                if length <= best_len:
                    break
                if i + length > len(tokens):
                    continue
                name = self.canonical.get(tuple(tokens[i:i + length]))
                if name is not None:
                    best, best_len = name, length
                    break
        return best

    def to_json(self) -> list[list]:
        names = sorted(set(self.canonical.values()))
        return [[n, sorted(set(self.aliases.get(n, [])))] for n in names]

    @classmethod
    def from_json(cls, rows: list[list]) -> "EntityIndex":
        return cls((name, aliases) for name, aliases in rows)
