"""extract_choice: the documented, versioned rule set, case by case."""

from __future__ import annotations

import random

import pytest

from evalkit.metrics import EXTRACTOR_VERSION, extract_choice

ABCD = ["A", "B", "C", "D"]

CASES = [
    # rule 1: the whole answer is a letter
    ("B", "B"),
    ("b", "B"),  # a lone lower-case letter counts
    ("a", "A"),
    (" (C) ", "C"),
    ("D.", "D"),
    ("[d]", "D"),
    ("**B**", "B"),
    ("'A'", "A"),
    ("（Ｃ）", "C"),  # full-width forms (NFKC)
    ("E", None),  # not a valid choice
    ("", None),
    ("   ", None),
    # rule 2: answer cues
    ("Based on the video, the answer is C", "C"),
    ("The answer is A.", "A"),
    ("Answer: c.", "C"),  # lower-case letter directly before punctuation
    ("answer: b", "B"),  # ... or the end of the text
    ("Answer:A", "A"),
    ("The correct answer is (B) a cat", "B"),
    ("The answer is: (d)", "D"),
    ("**Answer:** B", "B"),
    ("Final Answer: D", "D"),
    ("The best option is D since it fits", "D"),
    ("The answer is option B.", "B"),
    ("答案是B", "B"),
    ("答案：C", "C"),
    ("The answer is B. Earlier I said the answer is A", "A"),  # last cue wins
    ("The correct answer is B, because A is wrong", "B"),
    ("Answer: B, a small cat", "B"),
    ("The answer is A because the man is running", "A"),
    ("The answer is a cat", None),  # article, no letter anywhere
    ("The answer is A cat", None),  # "A" + content word is an article
    ("The answer is A or B", None),  # ambiguous cue, then two stand-alone letters
    ("The answer is E", None),
    # rule 3: leading option markers
    ("(B) a cat", "B"),
    ("B. A cat sitting on a mat", "B"),
    ("C) the dog", "C"),
    ("b) the dog", "B"),
    ("D: none of the above", "D"),
    ("A - the red car", "A"),
    ("A.I. is everywhere", None),  # an abbreviation, not a marker
    # rule 4: option / choice cues
    ("I would go with option B.", "B"),
    ("Choice (c) fits best here", "C"),
    ("Option A is wrong, option B is right", None),
    # rule 5: stand-alone letters
    ("B is the correct answer", "B"),
    ("It's B.", "B"),
    ("I'm sure it's D", "D"),
    ("A is correct", "A"),
    ("I think it is A or B", None),  # ambiguous
    ("A and B", None),
    ("A cat is on the table", None),  # the article "A" is not a choice
    ("I think the cat is on the table", None),  # neither is the pronoun "I"
    ("There is a cat", None),
    ("The U.S. flag", None),
    ("D.C. is the capital", None),
    ("A's hat is red", None),
    ("The T-shirt is blue", None),
    ("It shows (b) clearly", "B"),
    ("Final: \\boxed{C}", "C"),
    ("The video shows a man. Therefore C", "C"),
    ("Based on the video", None),  # not "the first capital letter anywhere"
    ("Clearly, Bob is right", None),
    ("Description: A man walks. Best guess B", "B"),  # article A ignored, B stands alone
    # choice-v2: the three classes of wrong letters of choice-v1 (issue 14)
    ("(D) or (A)", None),  # two options: unparsed, not the leading one
    ("D) or (A)", None),
    ("(B)/(C)", None),
    ("(B) a cat, (C) a dog", None),  # the rest names another bracketed option
    ("(B) a cat, not a dog", "B"),
    ("It's A rather than C", None),  # names A and C: unparsed, not the last one
    ("A rather than C", None),
    ("B instead of D", None),
    ("A BUS", None),  # all-caps text: the article, not option A
    ("I THINK IT IS C", "C"),  # all-caps pronoun
    ("A OR B", None),  # all-caps connective: two letters
    ("A IS CORRECT", "A"),
    ("(A) A BUS", "A"),  # a leading marker still wins
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text, ABCD) == expected


def test_more_than_four_choices_and_i_as_a_choice() -> None:
    letters = list("ABCDEFGHIJ")
    assert extract_choice("The answer is I.", letters) == "I"
    assert extract_choice("I think it is J", letters) == "J"  # the pronoun is not a choice
    assert extract_choice("E", letters) == "E"
    assert extract_choice("E", ABCD) is None


def test_letters_are_returned_as_spelled_in_choices() -> None:
    assert extract_choice("B", ["a", "b", "c"]) == "b"
    assert extract_choice("the answer is (c)", "abc") == "c"


OPTIONS = {"A": "cat", "B": "dog", "C": "dark red", "D": "red"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dog", "B"),
        ("It's a dog.", "B"),
        ("Dark  Red", "C"),
        ("It is dark red.", "C"),  # "red" is inside the longer matching option
        ("red", "D"),
        ("a cat and a dog", None),  # two options named
        ("a bird", None),
        ("The answer is A", "A"),  # a letter always wins over option text
        ("A cat", "A"),  # article "A" ignored, then "cat" matches option A's text
        ("I think it is B or the cat", "B"),  # a letter was found: option text not consulted
    ],
)
def test_option_text_fallback(text: str, expected: str | None) -> None:
    assert extract_choice(text, ABCD, options=OPTIONS) == expected


def test_all_caps_option_text_falls_back_to_the_option() -> None:
    options = {"A": "car", "B": "bus", "C": "train", "D": "bike"}
    assert extract_choice("A BUS", ABCD, options=options) == "B"
    assert extract_choice("THE ANSWER IS A BUS.", ABCD, options=options) == "B"
    assert extract_choice("A CAR", ABCD, options=options) == "A"  # via its option text


def test_option_text_only_when_no_letter_found() -> None:
    assert extract_choice("A or B, maybe a dog", ABCD, options=OPTIONS) is None


def test_deterministic_and_order_independent_of_calls() -> None:
    rng = random.Random(0)
    texts = [text for text, _ in CASES]
    first = [extract_choice(t, ABCD) for t in texts]
    for _ in range(3):
        rng.shuffle(texts)
        assert {t: extract_choice(t, ABCD) for t in texts} == dict(
            zip([t for t, _ in CASES], first, strict=True)
        )


def test_invalid_choices_raise() -> None:
    with pytest.raises(ValueError):
        extract_choice("A", [])
    with pytest.raises(ValueError):
        extract_choice("A", ["AB", "C"])
    with pytest.raises(ValueError):
        extract_choice("1", ["1", "2"])


def test_version_is_recorded() -> None:
    assert EXTRACTOR_VERSION == "choice-v2"
