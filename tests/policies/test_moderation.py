"""Prompt moderation: normalisation, matching, config errors, properties and precision."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.moderation import (
    ModerationCategory,
    ModerationConfig,
    ModerationConfigError,
    ModerationVerdict,
    Moderator,
    normalise,
)

TEXT = "text_to_image.text"
NEGATIVE = "text_to_image.negative_text"

# Small probe config: one category per behaviour under test.
PROBE = Moderator.compile(
    ModerationConfig(
        categories=(
            ModerationCategory("violence", terms=("decapitated",)),
            ModerationCategory(
                "sexual",
                terms=("nude", "naked", "sex", "hard core", "n00d"),
                patterns=(r"\bnudity\b",),
            ),
            ModerationCategory("profanity", terms=("ass",), patterns=(r"\bass\w*",)),
            # Words that appear only if the normaliser wrongly glues or maps ordinary text.
            ModerationCategory("glue-probe", terms=("anode", "scats", "ss", "ss coffee")),
        ),
        allow=("assassin", "assassins", "pussy willow"),
    )
)

BLOCKED = [
    ("plain", {TEXT: "a nude portrait"}, "sexual", TEXT),
    ("upper-case", {TEXT: "A NUDE PORTRAIT"}, "sexual", TEXT),
    ("dots", {TEXT: "a n.u.d.e portrait"}, "sexual", TEXT),
    ("spaces", {TEXT: "a n u d e portrait"}, "sexual", TEXT),
    ("hyphens-upper", {TEXT: "N-U-D-E"}, "sexual", TEXT),
    ("underscores", {TEXT: "n_u_d_e"}, "sexual", TEXT),
    ("stars", {TEXT: "n*u*d*e"}, "sexual", TEXT),
    ("spaced-dots", {TEXT: "n . u . d . e!"}, "sexual", TEXT),
    ("full-width", {TEXT: "ｎｕｄｅ beach"}, "sexual", TEXT),
    ("zero-width-joiner", {TEXT: "nu\u200dde"}, "sexual", TEXT),
    ("zero-width-space", {TEXT: "n\u200bude"}, "sexual", TEXT),
    ("soft-hyphen", {TEXT: "nu\u00adde"}, "sexual", TEXT),
    ("word-joiner-and-bom", {TEXT: "\ufeffn\u2060ude"}, "sexual", TEXT),
    ("leet-digit", {TEXT: "nud3 model"}, "sexual", TEXT),
    ("leet-at", {TEXT: "n@ked"}, "sexual", TEXT),
    ("leet-dollar-leading", {TEXT: "$3x"}, "sexual", TEXT),
    ("leet-dollar-trailing", {TEXT: "a$$"}, "profanity", TEXT),
    ("leet-spaced", {TEXT: "n u d 3"}, "sexual", TEXT),
    ("spelled-after-article", {TEXT: "a n u d e photo"}, "sexual", TEXT),
    ("spelled-after-article-other-separator", {TEXT: "a n.u.d.e photo"}, "sexual", TEXT),
    ("spelled-phrase", {TEXT: "h a r d c o r e"}, "sexual", TEXT),
    # Documented trade-off: inside a spelled-out run, terms match as substrings.
    ("spelled-ordinary-word-tradeoff", {TEXT: "c l a s s"}, "profanity", TEXT),
    ("leet-double-zero-listed-as-term", {TEXT: "N 0 0 D"}, "sexual", TEXT),
    ("diacritics", {TEXT: "nüde"}, "sexual", TEXT),
    ("diacritics-upper", {TEXT: "NÚDE"}, "sexual", TEXT),
    ("phrase-extra-spaces", {TEXT: "hard   \t core scene"}, "sexual", TEXT),
    ("phrase-hyphen", {TEXT: "Hard-Core"}, "sexual", TEXT),
    ("pattern", {TEXT: "artistic nudity"}, "sexual", TEXT),
    ("pattern-after-normalising", {TEXT: "NUD1TY"}, "sexual", TEXT),
    ("negative-field-only", {TEXT: "a portrait", NEGATIVE: "nude"}, "sexual", NEGATIVE),
    ("first-category-wins", {TEXT: "nude decapitated"}, "violence", TEXT),
    ("category-before-field", {TEXT: "nude", NEGATIVE: "decapitated"}, "violence", NEGATIVE),
    ("first-field-wins", {TEXT: "nude", NEGATIVE: "naked"}, "sexual", TEXT),
    ("term-beside-allowed-word", {TEXT: "assassin ass"}, "profanity", TEXT),
    ("allowed-phrase-not-a-cover", {TEXT: "assassins and sex"}, "sexual", TEXT),
]


@pytest.mark.parametrize(
    ("texts", "category", "field"),
    [row[1:] for row in BLOCKED],
    ids=[row[0] for row in BLOCKED],
)
def test_blocked(texts: dict[str, str], category: str, field: str) -> None:
    assert PROBE.check(texts) == ModerationVerdict(blocked=True, category=category, field=field)


NOT_BLOCKED = [
    ("substring-in-longer-word", {TEXT: "a denuded hillside"}),
    ("substring-sextant", {TEXT: "brass sextant, essex"}),
    ("allowed-word-containing-term", {TEXT: "Assassin's Creed style poster"}),
    ("allowed-word-leet", {TEXT: "@ss@ssins on rooftops"}),
    ("allowed-phrase", {TEXT: "pussy willow branches"}),
    ("allowed-word-spelled-out", {TEXT: "a-s-s-a-s-s-i-n"}),
    ("short-spelled-run", {TEXT: "plan a b testing"}),
    ("ordinary-word-containing-term", {TEXT: "classic glass bass"}),
    ("number-alone", {TEXT: "5 cats"}),
    ("price", {TEXT: "$5 coffee"}),
    ("two-words-not-glued", {TEXT: "an ode to joy"}),
    ("word-edges-not-glued", {TEXT: "snud eggs"}),
    ("leet-term-whole-word-only", {TEXT: "n00dles"}),
    ("term-split-across-fields", {TEXT: "nu", NEGATIVE: "de"}),
    ("phrase-split-across-allowed-word", {TEXT: "hard assassin core"}),
    ("number-then-word", {TEXT: "3 nudibranchs"}),
    ("empty-mapping", {}),
    ("empty-texts", {TEXT: "", NEGATIVE: "   "}),
]


@pytest.mark.parametrize("texts", [row[1] for row in NOT_BLOCKED], ids=[r[0] for r in NOT_BLOCKED])
def test_not_blocked(texts: dict[str, str]) -> None:
    assert PROBE.check(texts) == ModerationVerdict(blocked=False)


NORMALISED = [
    ("case-fold", "NUDE Straße", "nude strasse"),
    ("full-width", "ｎｕｄｅ", "nude"),
    ("ligature", "ﬁne art", "fine art"),
    ("zero-width", "n\u200bu\u200cd\u200de\u2060\ufeff", "nude"),
    ("soft-hyphen", "nu\u00adde", "nude"),
    ("diacritics", "crème brûlée nüde", "creme brulee nude"),
    ("spelled-dots", "n.u.d.e.", "nude."),
    ("spelled-then-word", "n u d e photo", "nude photo"),
    ("spelled-trailing-bang", "n . u . d . e!", "nude!"),
    ("spelled-separator-change", "a n.u.d.e", "a nude"),
    ("spelled-phrase-double-space", "s e l f  h a r m", "self harm"),
    ("spelled-absorbs-article", "a n u d e", "anude"),
    ("spelled-leet", "$ e x", "sex"),
    ("two-singles-kept", "plan a b", "plan a b"),
    ("words-never-glued", "an ode", "an ode"),
    ("leet-digits", "s3x nud3 a55", "sex nude ass"),
    ("leet-symbols", "n@ked n!pple @ss $ex a$$", "naked nipple ass sex ass"),
    ("leet-double-zero", "n00d n00d3", "nood noode"),
    ("trailing-bang-is-punctuation", "wow!! nude!", "wow!! nude!"),
    ("numbers-alone", "5 cats $5 1080", "5 cats $5 1080"),
    ("number-with-unit", "50mm", "somm"),
    ("whitespace", "  hard \t\n  core  ", "hard core"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [row[1:] for row in NORMALISED], ids=[row[0] for row in NORMALISED]
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_without_leetspeak_keeps_digits_and_symbols() -> None:
    assert normalise("N U D 3 n@ked", leetspeak=False) == "nud3 n@ked"


def test_leetspeak_off_in_config_does_not_map() -> None:
    moderator = Moderator.compile(
        ModerationConfig(categories=(ModerationCategory("s", terms=("nude",)),), leetspeak=False)
    )
    assert not moderator.check({TEXT: "nud3"}).blocked
    assert moderator.check({TEXT: "n.u.d.e"}).blocked


def test_double_zero_is_not_guessed_as_u() -> None:
    only_nude = Moderator.compile(
        ModerationConfig(categories=(ModerationCategory("s", terms=("nude",)),))
    )
    assert not only_nude.check({TEXT: "n00d"}).blocked


def test_verdict_never_echoes_the_term() -> None:
    verdict = PROBE.check({TEXT: "decapitated"})
    assert verdict.blocked
    assert "decapitated" not in repr(verdict)


def test_empty_config_blocks_nothing() -> None:
    assert Moderator.compile(ModerationConfig()).check({TEXT: "nude"}) == ModerationVerdict(False)


def _config(
    terms: object = ("nude",), patterns: object = (), allow: object = ()
) -> ModerationConfig:
    second = ModerationCategory("second", terms=terms, patterns=patterns)  # type: ignore[arg-type]
    return ModerationConfig(
        categories=(ModerationCategory("first", terms=("x rated",)), second),
        allow=allow,  # type: ignore[arg-type]
    )


CONFIG_ERRORS = [
    (
        "bad-regex",
        _config(patterns=(r"\bok\b", "ab(c")),
        "categories[1].patterns[1]",
        "invalid regular expression: missing ), unterminated subpattern at position 2",
    ),
    (
        "empty-term",
        _config(terms=("nude", "")),
        "categories[1].terms[1]",
        "empty term: no letters or digits after normalisation",
    ),
    (
        "invisible-term",
        _config(terms=(" \u200b ",)),
        "categories[1].terms[0]",
        "empty term: no letters or digits after normalisation",
    ),
    ("empty-pattern", _config(patterns=("",)), "categories[1].patterns[0]", "empty pattern"),
    (
        "pattern-matching-empty-text",
        _config(patterns=("x*",)),
        "categories[1].patterns[0]",
        "pattern matches empty text, so it would block every prompt",
    ),
    (
        "empty-allow",
        _config(allow=("scunthorpe", "  ")),
        "allow[1]",
        "empty allow-list entry: no letters or digits after normalisation",
    ),
    (
        "terms-as-one-string",
        _config(terms="nude"),
        "categories[1].terms",
        "must be a list of strings, not a single string",
    ),
    (
        "non-string-term",
        _config(terms=("nude", 3)),
        "categories[1].terms[1]",
        "must be a string, not int",
    ),
]


@pytest.mark.parametrize(
    ("config", "path", "reason"),
    [row[1:] for row in CONFIG_ERRORS],
    ids=[row[0] for row in CONFIG_ERRORS],
)
def test_config_errors(config: ModerationConfig, path: str, reason: str) -> None:
    with pytest.raises(ModerationConfigError) as caught:
        Moderator.compile(config)
    assert (caught.value.path, caught.value.reason) == (path, reason)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == f"{path}: {reason}"


def test_empty_category_name_is_an_error() -> None:
    with pytest.raises(ModerationConfigError) as caught:
        Moderator.compile(ModerationConfig(categories=(ModerationCategory(" "),)))
    assert caught.value.path == "categories[0].name"


# --- properties ----------------------------------------------------------------------------

TRICKY = st.sampled_from(
    list("nudeNUDE ａｅ013457@$!.-_*'\t\n\u200b\u200d\u00ad\ufeff\u0301\u0308ßﬁİ각")
)
VOCABULARY = st.sampled_from(
    ["assassin", "assassins", "pussy", "willow", "nude", "hard", "core", "a", "n", "u", "d", "e"]
)
PHRASES = st.lists(VOCABULARY, max_size=8).map(" ".join)
TEXTS = st.text() | st.text(alphabet=TRICKY) | st.text(alphabet=st.characters() | TRICKY) | PHRASES


@given(text=TEXTS, leetspeak=st.booleans())
@settings(max_examples=300)
def test_normalise_is_idempotent(text: str, leetspeak: bool) -> None:
    once = normalise(text, leetspeak=leetspeak)
    assert normalise(once, leetspeak=leetspeak) == once


@given(texts=st.dictionaries(st.text(max_size=10), TEXTS, max_size=4))
def test_check_never_raises(texts: dict[str, str]) -> None:
    verdict = PROBE.check(texts)
    assert verdict.blocked == (verdict.category is not None) == (verdict.field in texts)


@given(
    separator=st.sampled_from([" ", ".", "-", "_", "*", " . ", "\u200b", "/"]),
    upper=st.booleans(),
)
def test_spelled_out_terms_are_caught(separator: str, upper: bool) -> None:
    word = separator.join("NUDE" if upper else "nude")
    assert PROBE.check({TEXT: f"a {word} photo"}).category == "sexual"


# --- precision on ordinary prompts ---------------------------------------------------------

REALISTIC = Moderator.compile(
    ModerationConfig(
        categories=(
            ModerationCategory(
                "sexual",
                terms=(
                    *("nude", "nudes", "naked", "nsfw", "porn", "sex", "sexy", "topless"),
                    *("nipple", "nipples", "genitals", "hard core", "hardcore", "cum", "tits"),
                    *("anal", "cock", "pussy", "boobs"),
                ),
                patterns=(r"\bnud(?:e|es|ity|ist)\b", r"\bporn\w*", r"\bcock\w*"),
            ),
            ModerationCategory(
                "violence",
                terms=("gore", "decapitated", "beheading", "dismembered", "bloodbath"),
            ),
            ModerationCategory(
                "self-harm", terms=("self harm", "selfharm", "suicide", "kill myself")
            ),
            ModerationCategory(
                "profanity",
                terms=("ass", "asshole", "shit", "fuck", "rapist", "hell no"),
                patterns=(r"\bf+u+c+k+\w*", r"\bass(?:hole|holes|es)?\b"),
            ),
        ),
        allow=("scunthorpe", "analysis", "cocktail", "cocktails", "cockpit", "cockatoo"),
    )
)

BENIGN = [
    "a red fox in snow, studio light",
    "skincare product shot on marble",
    "classic car at sunset, 35mm film",
    "assassin's creed style poster",
    "a glass of sparkling water with lemon",
    "bass guitar on a dimly lit stage",
    "grass field with wildflowers",
    "a cocktail in a highball glass",
    "data analysis dashboard illustration",
    "Scunthorpe town centre, watercolour",
    "Essex countryside, oil painting",
    "Sussex cottage garden in spring",
    "a brass sextant on a ship deck",
    "a denuded hillside after a wildfire",
    "nudibranch underwater macro photo",
    "therapist office interior, soft light",
    "shitake mushrooms on a wooden plate",
    "cumulus clouds over the sea",
    "the title card of an old film",
    "canal boats in Amsterdam",
    "a cockatoo in the cockpit of a plane",
    "5 cats on a sofa",
    "$5 coffee menu board, chalk",
    "an ode to autumn, impressionist",
    "hard cover book on a desk",
    "hello kitty plush toy, shell collection",
    "massive waterfall in Iceland",
    "passport photo, plain background",
    "compass on an old map",
    "a 4k wallpaper of mountains, 50mm lens, f1.8",
    "U.S.A. flag waving, 3d render",
    "gorgeous gothic cathedral",
]


@pytest.mark.parametrize("prompt", BENIGN)
def test_ordinary_prompts_pass(prompt: str) -> None:
    assert REALISTIC.check({TEXT: prompt}) == ModerationVerdict(blocked=False)


HARMFUL = [
    ("N.U.D.E beach photo", "sexual"),
    ("p0rnographic poster", "sexual"),
    ("a cocksure nud1st", "sexual"),
    ("decapitated statue, gore", "violence"),
    ("s e l f  h a r m", "self-harm"),
    ("self-harm diary", "self-harm"),
    ("fuuuck this", "profanity"),
    ("a$$hole boss", "profanity"),
]


@pytest.mark.parametrize(("prompt", "category"), HARMFUL, ids=[row[0] for row in HARMFUL])
def test_realistic_config_still_catches(prompt: str, category: str | None) -> None:
    assert REALISTIC.check({NEGATIVE: prompt}).category == category
