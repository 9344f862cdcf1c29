"""Prompt moderation on normalised text.

Ops configure categories of terms and regex patterns in the policy file; `Moderator.compile`
checks and compiles them once, and `Moderator.check` tells whether any prompt field hits a
category. A verdict names only the category and the field, never the matched term, so it can
be returned to a client or logged without repeating the offending word.

Normalisation (`normalise`)
---------------------------
Text and terms go through the same steps, so a term matches every spelling that normalises
to the same words. The steps, in order:

1. Unicode NFKC: full-width letters (``ｎｕｄｅ``), ligatures (``ﬁ``), circled, super- and
   subscript forms become their plain equivalents, so look-alike compatibility characters do
   not hide a word.
2. Case folding (`str.casefold`): stronger than `lower()` (``ß`` → ``ss``) and the Unicode
   recommendation for caseless matching.
3. Decompose (NFD) and drop invisible characters and combining marks, then recompose (NFC):

   * format characters (category Cf: zero-width space / joiner / non-joiner U+200B-U+200D,
     word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, bidi controls, tag characters), and
     control characters (Cc) other than whitespace: they render as nothing, so ``nu\\u200dde``
     reads as "nude" and must match it;
   * non-spacing combining marks (Mn), so ``nüde`` and ``nudé`` become ``nude``. Spacing marks
     (Mc) stay: they carry letters in Indic scripts. Recomposing keeps e.g. Hangul intact.

4. Spelled-out words: a run of at least three single characters with the same separator
   between each (``n.u.d.e``, ``n u d e``, ``N-U-D-E``, ``n_u_d_e``, ``n*u*d*e``,
   ``n . u . d . e``) is joined into one word; a trailing ``!`` does not count (``e!`` is one
   character). Only single characters are joined, never words of two or more, so ``an ode``
   stays ``an ode`` and ``snud eggs`` never reads as "nude"; the word after a run stays apart
   (``n u d e photo`` → ``nude photo``). Runs of two are left alone (``plan a b``,
   ``a 5 pack``). A change of separator ends a run, which keeps a real one-letter word out of
   it (``a n.u.d.e`` → ``a nude``) and splits spelled phrases (``s e l f  h a r m`` → ``self
   harm``). With one separator throughout, a one-letter word is absorbed (``a n u d e`` →
   ``anude``); matching allows for that (below).
5. Leetspeak (when enabled): ``0→o 1→i 3→e 4→a 5→s 7→t @→a $→s !→i``, applied per word, where
   a word is a run of letters, digits, marks and ``@ $ !`` and only if it contains a letter:

   * digits are mapped anywhere in such a word (``nud3`` → ``nude``, ``s3x`` → ``sex``,
     ``a55`` → ``ass``); a number alone stays a number (``5 cats``, ``$5 coffee``,
     ``1080``). Numbers with units are mapped too (``50mm`` → ``somm``): harmless, because only
     a whole word equal to a term matches, but pattern authors should know it;
   * ``@`` and ``$`` are mapped anywhere in such a word (``n@ked``, ``@ss``, ``$ex``,
     ``a$$``): they are rarely anything but a letter stand-in inside a word;
   * ``!`` is mapped only between two letters or digits (``n!pple``); at either end of a
     word it is punctuation and stays (``nude!`` → ``nude!``, ``wow!!`` → ``wow!!``);
   * each character maps to one letter, so ``n00d`` → ``nood``, not "nude", and ``n00d3`` →
     ``noode``. ``00 → u`` is not guessed (it would turn "b00k" into "buk"); ops who want such
     spellings list them as terms: a term ``n00d`` normalises to ``nood`` and catches ``n00d``,
     ``N00D`` and ``n 0 0 d`` alike.

6. Whitespace: runs of whitespace become one space, and the ends are trimmed, so phrase terms
   match however many spaces, tabs or newlines separate their words.

The steps are repeated until the text no longer changes (normally one confirming pass), which
makes `normalise` idempotent: ``normalise(normalise(x)) == normalise(x)``.

Matching
--------
* Terms match whole words and whole phrases only, never substrings of a longer word: "nude"
  does not match "denuded", "ass" does not match "class", "sex" does not match "sextant". A
  term is split into words on anything that is not a letter, digit or mark, so the phrase
  term "hard core" matches ``hard   core``, ``hard-core`` and ``Hard_Core``, but not
  ``hardcore`` (list that as a term of its own). Inflections ("nudes", "nudity") are listed as
  terms or caught with a pattern.
* A word joined from a spelled-out run is the one exception: any term, its words run
  together, found anywhere inside it matches (``a n u d e`` → ``anude`` hits "nude",
  ``h a r d c o r e`` hits "hard core"), because the spacing no longer shows where the word
  starts. The price is that a spelled-out ordinary word containing a term (``c l a s s``) is
  blocked unless it is allow-listed; ordinary prompts are rarely spelled out.
* Patterns are Python regexes searched (case-insensitively) in the normalised text: write
  them for lower-case, accent-free, leet-mapped text. They may match inside words, which is
  what the allow list is for.
* Allow-listed words (or phrases) are removed as whole words before matching: for terms they
  act as a barrier a phrase cannot span; for patterns they are replaced by U+FFFC. So with the
  pattern ``\\bass\\w*`` and ``assassin`` allowed, "assassin's creed" passes, while "assassin
  ass" is still blocked.
* Categories are checked in order, and for each category the fields in mapping order; the
  first hit wins.

Known limits: homoglyphs from other scripts (Cyrillic "е" for Latin "e") are not mapped;
elongation ("nuuude") and words split into longer pieces ("nu de") are not joined (use
patterns); patterns run on the `re` engine, so ops must avoid catastrophic backtracking.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

__all__ = [
    "ModerationCategory",
    "ModerationConfig",
    "ModerationConfigError",
    "ModerationVerdict",
    "Moderator",
    "normalise",
]

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
_LEET_SYMBOLS = frozenset("@$!")
_ALWAYS_MAPPED = frozenset("@$")
_MIN_SPELLED = 3
_MAX_PASSES = 8
_WHITESPACE = re.compile(r"\s+")
_MASK = "\ufffc"

Words = tuple[str, ...]


@dataclass(frozen=True)
class ModerationCategory:
    """A named category: terms matched as whole words, patterns searched as regexes."""

    name: str
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModerationConfig:
    """Categories in priority order, words never treated as a match, leetspeak mapping."""

    categories: tuple[ModerationCategory, ...] = ()
    allow: tuple[str, ...] = ()
    leetspeak: bool = True


@dataclass(frozen=True)
class ModerationVerdict:
    """Blocked or not; the category and field that matched. Never the matched term."""

    blocked: bool
    category: str | None = None
    field: str | None = None


class ModerationConfigError(ValueError):
    """A moderation config entry that cannot be compiled, with its path in the config."""

    path: str
    reason: str

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --- normalisation -------------------------------------------------------------------------


def normalise(text: str, *, leetspeak: bool = True) -> str:
    """Normalise `text` for matching; see the module docstring for each step and why."""
    return _normalise(text, leetspeak)[0]


def _normalise(text: str, leetspeak: bool) -> tuple[str, frozenset[str]]:
    """The normalised text and the tokens in it that were joined from spelled-out runs."""
    current = text
    spelled: set[str] = set()
    for _ in range(_MAX_PASSES):
        following, joined = _normalise_once(current, leetspeak)
        spelled.update(joined)
        if following == current:
            break
        current = following
    return current, frozenset(spelled)


def _normalise_once(text: str, leetspeak: bool) -> tuple[str, list[str]]:
    tokens, separators, joined = _join_spelled(*_split(_fold(text)))
    if leetspeak:
        tokens = [_unleet(token) for token in tokens]
    text = _WHITESPACE.sub(" ", _interleave(tokens, separators)).strip()
    return text, [tokens[i] for i in joined]


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c for c in unicodedata.normalize("NFD", folded) if not _invisible(c))
    return unicodedata.normalize("NFC", kept)


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Mn", "Cf") or (category == "Cc" and not char.isspace())


def _is_word_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _is_token_char(char: str) -> bool:
    return char in _LEET_SYMBOLS or _is_word_char(char)


def _split(text: str) -> tuple[list[str], list[str]]:
    """Tokens and the separators around them: text == s0 + t0 + s1 + t1 + ... + sn."""
    tokens: list[str] = []
    separators = [""]
    for is_token, group in groupby(text, key=_is_token_char):
        if is_token:
            tokens.append("".join(group))
            separators.append("")
        else:
            separators[-1] = "".join(group)
    return tokens, separators


def _interleave(tokens: Sequence[str], separators: Sequence[str]) -> str:
    return separators[0] + "".join(t + s for t, s in zip(tokens, separators[1:], strict=True))


def _join_spelled(
    tokens: list[str], separators: list[str]
) -> tuple[list[str], list[str], list[int]]:
    """Join spelled-out runs into one token each; also return the indices of joined tokens."""
    out_tokens: list[str] = []
    out_separators = [separators[0]]
    joined: list[int] = []
    i = 0
    while i < len(tokens):
        end = _spelled_end(tokens, separators, i)
        if end - i >= _MIN_SPELLED:
            joined.append(len(out_tokens))
            run = tokens[i:end]
            out_tokens.append("".join(t.rstrip("!") for t in run[:-1]) + run[-1])
        else:
            end = i + 1
            out_tokens.append(tokens[i])
        out_separators.append(separators[end])
        i = end
    return out_tokens, out_separators, joined


def _spelled_end(tokens: list[str], separators: list[str], start: int) -> int:
    """End of the run of one-character tokens from `start` that share one separator.

    `separators[k]` precedes `tokens[k]`. A trailing `!` is punctuation: `e!` is one character.
    """
    end = start
    while (
        end < len(tokens)
        and len(tokens[end].rstrip("!")) == 1
        and (end <= start + 1 or separators[end] == separators[start + 1])
    ):
        end += 1
    return end


def _unleet(token: str) -> str:
    if not any(c.isalpha() for c in token):
        return token
    return "".join(_unleet_at(token, i) for i in range(len(token)))


def _unleet_at(token: str, i: int) -> str:
    """Digits, `@` and `$` map anywhere; `!` only between letters or digits (else punctuation)."""
    char = token[i]
    if char == "!" and not (0 < i < len(token) - 1 and _lettery(token[i - 1] + token[i + 1])):
        return char
    return _LEET.get(char, char)


def _lettery(chars: str) -> bool:
    """Whether every character is, or leet-maps to, a letter or digit."""
    return all(c.isalnum() or c in _ALWAYS_MAPPED for c in chars)


def _word_spans(text: str) -> list[tuple[int, int]]:
    """Start and end of each run of letters, digits and marks in `text`."""
    spans: list[tuple[int, int]] = []
    start = 0
    for is_word, group in groupby(text, key=_is_word_char):
        end = start + sum(1 for _ in group)
        if is_word:
            spans.append((start, end))
        start = end
    return spans


def _words(text: str) -> Words:
    return tuple(text[start:end] for start, end in _word_spans(text))


# --- compiled form -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """A normalised text: its words (allow-listed ones as None), the words joined from
    spelled-out runs (not allow-listed) and the text with allow-listed words masked."""

    words: tuple[str | None, ...]
    spelled: tuple[str, ...]
    masked: str


@dataclass(frozen=True)
class _Phrases:
    """A set of word sequences, found as whole-word runs in a word list."""

    phrases: frozenset[Words]
    lengths: tuple[int, ...]
    glued: tuple[str, ...]  # each phrase with its words run together, as a spelled run reads

    @classmethod
    def of(cls, phrases: Sequence[Words]) -> _Phrases:
        lengths = tuple(sorted({len(p) for p in phrases}))
        return cls(frozenset(phrases), lengths, tuple(dict.fromkeys("".join(p) for p in phrases)))

    def find(self, words: Sequence[str | None]) -> Iterator[tuple[int, int]]:
        """Every (start, end) word range that is one of the phrases."""
        for i in range(len(words)):
            for n in self.lengths:
                if i + n <= len(words) and tuple(words[i : i + n]) in self.phrases:
                    yield i, i + n


@dataclass(frozen=True)
class _Category:
    name: str
    terms: _Phrases
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, text: _Prepared) -> bool:
        if next(self.terms.find(text.words), None) is not None:
            return True
        if any(term in word for word in text.spelled for term in self.terms.glued):
            return True
        return any(pattern.search(text.masked) for pattern in self.patterns)


class Moderator:
    """A compiled moderation config. Build it with `Moderator.compile`."""

    __slots__ = ("_allow", "_categories", "_leetspeak")

    def __init__(self, categories: tuple[_Category, ...], allow: _Phrases, leetspeak: bool):
        self._categories = categories
        self._allow = allow
        self._leetspeak = leetspeak

    @classmethod
    def compile(cls, config: ModerationConfig) -> Moderator:
        """Check and compile `config` once; raise `ModerationConfigError` on a bad entry."""
        leet = config.leetspeak
        categories = tuple(
            _compile_category(category, f"categories[{i}]", leet)
            for i, category in enumerate(config.categories)
        )
        allow = [
            _phrase(entry, f"allow[{i}]", leet, "empty allow-list entry")
            for i, entry in _entries(config.allow, "allow")
        ]
        return cls(categories, _Phrases.of(allow), leet)

    def check(self, texts: Mapping[str, str]) -> ModerationVerdict:
        """The first hit, categories in order, then fields in mapping order."""
        prepared = [(field, self._prepare(text)) for field, text in texts.items()]
        for category in self._categories:
            for field, text in prepared:
                if category.matches(text):
                    return ModerationVerdict(blocked=True, category=category.name, field=field)
        return ModerationVerdict(blocked=False)

    def _prepare(self, text: str) -> _Prepared:
        normal, joined = _normalise(text, self._leetspeak)
        spans = _word_spans(normal)
        words: list[str | None] = [normal[start:end] for start, end in spans]
        allowed = {i for start, end in self._allow.find(words) for i in range(start, end)}
        masked = normal
        for i in sorted(allowed, reverse=True):
            start, end = spans[i]
            masked = masked[:start] + _MASK + masked[end:]
            words[i] = None
        spelled_words = {word for token in joined for word in _words(token)}
        spelled = tuple(w for w in words if w is not None and w in spelled_words)
        return _Prepared(tuple(words), spelled, masked)


def _compile_category(category: ModerationCategory, path: str, leet: bool) -> _Category:
    if not isinstance(category.name, str) or not category.name.strip():
        raise ModerationConfigError(f"{path}.name", "empty category name")
    terms = [
        _phrase(term, f"{path}.terms[{i}]", leet, "empty term")
        for i, term in _entries(category.terms, f"{path}.terms")
    ]
    patterns = tuple(
        _pattern(pattern, f"{path}.patterns[{i}]")
        for i, pattern in _entries(category.patterns, f"{path}.patterns")
    )
    return _Category(category.name, _Phrases.of(terms), patterns)


def _entries(values: Sequence[str], path: str) -> list[tuple[int, str]]:
    """The entries of a list of strings, rejecting a bare string or a non-string entry."""
    if isinstance(values, str):
        raise ModerationConfigError(path, "must be a list of strings, not a single string")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ModerationConfigError(
                f"{path}[{i}]", f"must be a string, not {type(value).__name__}"
            )
    return list(enumerate(values))


def _phrase(entry: str, path: str, leet: bool, empty: str) -> Words:
    words = _words(normalise(entry, leetspeak=leet))
    if not words:
        raise ModerationConfigError(path, f"{empty}: no letters or digits after normalisation")
    return words


def _pattern(source: str, path: str) -> re.Pattern[str]:
    if not source:
        raise ModerationConfigError(path, "empty pattern")
    try:
        compiled = re.compile(source, re.IGNORECASE)
    except re.error as exc:
        raise ModerationConfigError(path, f"invalid regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise ModerationConfigError(
            path, "pattern matches empty text, so it would block every prompt"
        )
    return compiled
