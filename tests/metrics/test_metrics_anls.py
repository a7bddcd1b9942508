"""ANLS, both variants: ``paper`` against the PyPI ``anls`` package, ``rrc`` (the leaderboard's
evaluation script) against an independent reference written below, on generated and edge-case pairs."""

from __future__ import annotations

import random

import pytest
from anls import anls_score

from evalkit.metrics import anls, anls_batch

ALPHABET = list("abcdefghij ABCDE  012345.,-") + list("ßéÉñÑüİıﬁ日本語中文مرحباÀ") + ["\t", "\n", "  "]


def _random_text(rng: random.Random, max_len: int = 12) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        pos = rng.randint(0, len(chars))
        if op < 0.3 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.6:
            chars.insert(pos, rng.choice(ALPHABET))
        elif chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(ALPHABET)
    out = "".join(chars)
    if rng.random() < 0.3:
        out = out.upper() if rng.random() < 0.5 else f"  {out} "
    return out


def _generated_cases(n: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        base = _random_text(rng)
        answers = [_mutate(rng, base) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            answers.append(_random_text(rng))
        prediction = _mutate(rng, base) if rng.random() < 0.8 else _random_text(rng)
        cases.append((prediction, answers))
    return cases


def _boundary_cases() -> list[tuple[str, list[str]]]:
    """Pairs whose normalised distance is exactly k / L for many k and L (incl. exactly τ)."""
    cases = []
    for length in range(1, 13):
        for dist in range(length + 1):
            gold = "a" * length
            pred = "b" * dist + "a" * (length - dist)
            cases.append((pred, [gold]))
            cases.append((pred.upper(), [f"  {gold}\t"]))
    return cases


EDGE_CASES = [
    ("", [""]),
    ("", ["a"]),
    ("a", [""]),
    ("   ", ["\t\n"]),
    ("ß", ["ss"]),
    ("ßa", ["xa"]),  # NL = 1/3 with upper-cased lengths, 1/2 with plain lengths
    ("straße", ["STRASSE"]),
    ("İstanbul", ["istanbul"]),  # "İ".lower() is two code points
    ("ﬁle", ["file"]),  # "ﬁ".upper() == "FI"
    ("東京都", ["東京"]),
    ("مرحبا بالعالم", ["مرحبا"]),
    ("Café  au   lait", ["cafe au lait"]),
    ("naïve", ["naive", "naïve "]),
    ("1,234.5", ["1234.5", "1,234.50"]),
    ("the answer", ["answer", "the  answer", "an answer"]),
    ("ab", ["abcd"]),  # exactly τ -> 0
    ("abc", ["abcdef"]),  # exactly τ -> 0
    ("abcd", ["abcdefg"]),  # 3/7 < τ
    ("🙂 smile", ["smile"]),
]


@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.75, 1.0, 0.0])
def test_matches_official_package_on_generated_pairs(threshold: float) -> None:
    cases = _generated_cases(1200, seed=int(threshold * 100)) + _boundary_cases() + EDGE_CASES
    mismatches = [
        (p, a, anls(p, a, threshold, variant="paper"), anls_score(p, a, threshold))
        for p, a in cases
        if anls(p, a, threshold, variant="paper") != anls_score(p, a, threshold)
    ]
    assert not mismatches, mismatches[:5]


def test_generated_pairs_cover_the_whole_range() -> None:
    scores = [anls(p, a, variant="paper") for p, a in _generated_cases(1200, seed=50)]
    assert min(scores) == 0.0 and max(scores) == 1.0
    assert sum(0.0 < s < 1.0 for s in scores) > 200


def test_exactly_at_threshold_scores_zero() -> None:
    assert anls("ab", ["abcd"], variant="paper") == 0.0  # NL = 0.5, not < 0.5
    assert anls("abc", ["abcd"], variant="paper") == 0.75
    assert anls("ab", ["abcd"], threshold=0.51, variant="paper") == 0.5


def test_hand_computed_values() -> None:
    assert anls("  Hello   World ", ["hello world"]) == 1.0
    assert anls("ßa", ["xa"]) == 1 - 1 / 3  # the official upper-cased length (3, not 2)
    assert anls("", [""]) == 1.0
    assert anls("", ["x"]) == 0.0
    assert anls("kitten", ["sitting", "kitten!"]) == 1 - 1 / 7  # max over answers


def test_batch_equals_single() -> None:
    cases = _generated_cases(300, seed=7)
    preds = [p for p, _ in cases]
    golds = [a for _, a in cases]
    assert anls_batch(preds, golds) == [anls(p, a) for p, a in cases]
    assert anls_batch(preds, golds, threshold=0.3, variant="paper") == [
        anls_score(p, a, 0.3) for p, a in cases
    ]
    assert anls_batch(preds, golds, 0.3, "rrc") == [reference_rrc_anls(p, a, 0.3) for p, a in cases]
    with pytest.raises(ValueError):
        anls_batch(preds, golds[:-1])


def test_empty_answer_list_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no gold answers"):
        anls("x", [])
    with pytest.raises(ValueError):  # the oracle fails the same way (max() of an empty list)
        anls_score("x", [])


def test_single_string_answers_rejected() -> None:
    with pytest.raises(TypeError):
        anls("abc", "abc")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# variant="rrc": independent reference of the leaderboard's evaluation script
# ---------------------------------------------------------------------------------------------


def _ref_edit_distance(a: str, b: str) -> int:
    """Textbook Wagner-Fischer table on code points."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
    return table[len(a)][len(b)]


def reference_rrc_anls(prediction: str, answers: list[str], threshold: float = 0.5) -> float:
    """The RRC rule as documented: distance between the normalised strings, divided by the larger
    upper-cased length of the *raw* strings; the question keeps ``1 - min NL`` unless it is below
    the threshold."""

    def norm(text: str) -> str:
        return " ".join(text.strip().lower().split())

    values = []
    for answer in answers:
        length = max(len(answer.upper()), len(prediction.upper()))
        dist = _ref_edit_distance(norm(answer), norm(prediction))
        values.append(0.0 if length == 0 else float(dist) / float(length))
    result = 1 - min(values)
    return 0.0 if result < threshold else result


@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.75, 1.0, 0.0])
def test_rrc_matches_reference_on_generated_pairs(threshold: float) -> None:
    cases = _generated_cases(800, seed=int(threshold * 100) + 11) + _boundary_cases() + EDGE_CASES
    mismatches = [
        (p, a, anls(p, a, threshold, variant="rrc"), reference_rrc_anls(p, a, threshold))
        for p, a in cases
        if anls(p, a, threshold, variant="rrc") != reference_rrc_anls(p, a, threshold)
    ]
    assert not mismatches, mismatches[:5]


def test_rrc_is_the_default_and_differs_from_paper() -> None:
    cases = _generated_cases(1200, seed=3) + _boundary_cases()
    assert all(anls(p, a) == anls(p, a, variant="rrc") for p, a in cases)
    assert sum(anls(p, a, variant="rrc") != anls(p, a, variant="paper") for p, a in cases) > 20


@pytest.mark.parametrize(
    ("prediction", "answers", "rrc", "paper"),
    [
        ("ab", ["abcd"], 0.5, 0.0),  # NL = 0.5 exactly: rrc keeps it, paper drops it
        ("abc", ["abcdef"], 0.5, 0.0),
        ("abcd", ["abcdefg"], 4 / 7, 4 / 7),
        (" 199 ", ["1998"], 1 - 1 / 5, 0.75),  # raw length 5 (padding counts), normalised 4
        ("1998", ["  1998  "], 1.0, 1.0),  # no edits: padding does not matter
        ("  ab  ", ["abcd"], 1 - 2 / 6, 0.0),  # raw 6 -> NL 1/3; normalised 4 -> NL 1/2
        ("x", ["   "], 1 - 1 / 3, 0.0),  # gold normalises to "": 1 edit / raw length 3
        ("", [""], 1.0, 1.0),
        ("", ["x"], 0.0, 0.0),
        ("Strasse", ["straße"], 1 - 2 / 7, 1 - 2 / 7),
    ],
)
def test_rrc_and_paper_hand_computed(prediction: str, answers: list[str], rrc: float, paper: float) -> None:
    assert anls(prediction, answers, variant="rrc") == pytest.approx(rrc, abs=1e-15)
    assert reference_rrc_anls(prediction, answers) == pytest.approx(rrc, abs=1e-15)
    assert anls(prediction, answers, variant="paper") == pytest.approx(paper, abs=1e-15)
    assert anls_score(prediction, answers) == pytest.approx(paper, abs=1e-15)


def test_unknown_variant_raises() -> None:
    with pytest.raises(ValueError, match="variant"):
        anls("a", ["a"], variant="official")
