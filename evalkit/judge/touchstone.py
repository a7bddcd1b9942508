"""TouchStone judging: the pairwise judge prompt, the two position-swapped rounds, item scores and the
ability mapping. Pure functions (no I/O); :mod:`evalkit.plugins.touchstone` wires them to the judge.

Protocol (shared/protocols.md, TouchStone; OFA-Sys/TouchStone ``eval.py``):

* The judge is text-only. It sees the fine-grained human description of the image(s) instead of
  the image, the question, and two answers: the reference answer (``gpt4_ha_answer``, written by
  GPT-4 from the description) and the model's answer. It rates each 1-10 for helpfulness,
  relevance, accuracy and level of detail, the two scores alone on the first line. Temperature 0.
* Every item is judged twice: round 1 shows the reference as Assistant 1 and the model as
  Assistant 2 (the official order), round 2 swaps them.
* Headline score (the paper's / leaderboard's number) = the official pooling of ``eval.py``: mean
  of the model's scores over all valid rounds of all items, ×100 (100-1000); per category the same
  over the rounds of that category's items (:func:`pooled_round_score`).  A failed or unparseable
  round is dropped, counted and listed.
* Model item score = mean of its scores over the item's valid rounds; the mean of item scores is a
  secondary metric (``score_item_mean``; it differs from the headline only when rounds were dropped).
* Position bias of an item (both rounds valid) = the points an answer gains by being shown first,
  averaged over the two answers: ``((model_r2 - model_r1) + (ref_r1 - ref_r2)) / 2``.

The prompt wording is evalkit's own (:data:`JUDGE_PROMPT_VERSION`); it asks for the same thing as the
official one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.judge.parse_scores import PARSER_VERSION, parse_pair_scores

JUDGE_PROMPT_VERSION = "touchstone-judge-1"

JUDGE_SYSTEM = (
    "You are a careful and impartial reviewer who rates the quality of answers written by AI assistants."
)

JUDGE_TEMPLATE = (
    "[Description of the image(s)]\n{description}\n\n"
    "[Question]\n{question}\n\n"
    "[Answer of Assistant 1 - begin]\n{answer_1}\n[Answer of Assistant 1 - end]\n\n"
    "[Answer of Assistant 2 - begin]\n{answer_2}\n[Answer of Assistant 2 - end]\n\n"
    "[Your task]\n"
    "Two AI assistants answered the question above. They were shown the image(s) themselves; you are "
    "given a detailed human-written description of the image(s) instead, and you should treat that "
    "description as the truth about what the image(s) show.\n"
    "Rate each answer for how helpful, relevant, accurate and detailed it is. Give each assistant one "
    "overall score from 1 to 10, where a higher score means a better answer.\n"
    "Write the two scores alone on the first line, Assistant 1's score first, separated by one space "
    "(for example: 6 8). From the second line on, explain your ratings. Stay impartial: the order in "
    "which the two answers are shown must not influence your judgement."
)

#: the five abilities of TouchStone, in the order of the paper
ABILITIES = (
    "Basic description",
    "Visual recognition",
    "Visual comprehension",
    "Visual storytelling",
    "Multi-image analysis",
)
UNMAPPED = "unmapped"

# keyword rules, tried in this order, on the lower-cased task_name (then the categories); the
# 27 subtasks as the TouchStone README lists them:
#   description: simple / detailed description
#   recognition: attribute QA, movie/TV, art, landmark, celebrity, emotion, text, object,
#                structured content recognition
#   comprehension: style appreciation, abstract image, meme understanding, image analysis, chart
#                analysis, general problem solving, reasoning QA
#   storytelling: emails, poetry, stories, ads/commodity recommendation, brainstorming
#   multi-image: compare two/multiple images, summarise several images, compare commodities,
#                step-by-step analysis of images
ABILITY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Multi-image analysis", ("multi", "two image", "multiple image", "several image", "多图")),
    ("Visual storytelling", ("story", "stories", "storytelling", "poem", "poetry", "email", "e-mail",
                             "advert", "ads", "recommend", "brainstorm", "creative", "writing",
                             "故事", "诗", "邮件", "广告", "推荐", "头脑风暴", "创作", "写")),
    ("Visual comprehension", ("style", "apprecia", "abstract", "meme", "analy", "chart", "problem",
                              "reason", "understand", "comprehen", "math", "理解", "分析", "推理",
                              "图表", "欣赏", "解题")),
    ("Basic description", ("descri", "caption", "描述")),
    ("Visual recognition", ("recogn", "attribute", "movie", "tv", "art", "landmark", "celebrit", "emotion",
                            "text", "ocr", "object", "structur", "识别", "属性", "文字")),
)  # fmt: skip


def split_categories(value: Any) -> list[str]:
    """The categories of an item: a comma-separated string (ASCII or full-width commas) or a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    else:
        parts = re.split(r"[,，]", str(value))
    return [p.strip() for p in parts if p.strip()]


def ability_of(task_name: Any, categories: Sequence[str] = (), n_images: int = 1,
               overrides: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """The TouchStone ability of an item.

    Order: an explicit ``overrides[task_name]`` (config ``task.abilities``); a multi-image item
    (more than one image) is ``Multi-image analysis``; then the first rule of :data:`ABILITY_RULES`
    whose keyword starts a word of the task name, then of each category; else ``"unmapped"``.
    """
    name = "" if task_name is None else str(task_name).strip()
    if overrides:
        for key in (name, *categories):
            if key in overrides:
                return str(overrides[key])
    if n_images > 1:
        return "Multi-image analysis"
    for text in (name, *categories):
        low = text.lower()
        for ability, words in ABILITY_RULES:
            if any(re.search(rf"(?<![a-z]){re.escape(w)}", low) for w in words):
                return ability
    return UNMAPPED


def judge_messages(description: str, question: str, answer_1: str, answer_2: str) -> list[dict[str, str]]:
    """The judge conversation for one round (system turn + one user turn)."""
    user = JUDGE_TEMPLATE.format(description=description.strip(), question=question.strip(),
                                 answer_1=answer_1.strip(), answer_2=answer_2.strip())  # fmt: skip
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def round_messages(
    description: str, question: str, reference: str, prediction: str
) -> list[list[dict[str, str]]]:
    """Both rounds of an item: round 1 = (reference, model), round 2 = (model, reference)."""
    return [
        judge_messages(description, question, reference, prediction),
        judge_messages(description, question, prediction, reference),
    ]


@dataclass
class RoundResult:
    """One judged round of one item."""

    order: str  # "reference,model" (round 1) or "model,reference" (round 2)
    reply: str
    status: str  # "ok", a parse failure status, or "error" (the API failed)
    model: float | None = None
    reference: float | None = None
    source: str = ""
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Per-sample record form."""
        return {"order": self.order, "status": self.status, "model": self.model, "reference": self.reference,
                "reply": self.reply, "source": self.source, "error": self.error,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}  # fmt: skip


@dataclass
class ItemScores:
    """An item's scores from its valid rounds (1-10 scale); None when no round is valid."""

    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def valid(self) -> list[RoundResult]:
        """The rounds whose two scores were read."""
        return [r for r in self.rounds if r.status == "ok"]

    @property
    def model(self) -> float | None:
        """Mean model score over valid rounds."""
        v = [r.model for r in self.valid if r.model is not None]
        return math.fsum(v) / len(v) if v else None

    @property
    def reference(self) -> float | None:
        """Mean reference score over valid rounds."""
        v = [r.reference for r in self.valid if r.reference is not None]
        return math.fsum(v) / len(v) if v else None

    @property
    def position_bias(self) -> float | None:
        """Points an answer gains by being shown first (both rounds valid), else None."""
        if len(self.rounds) != 2 or any(r.status != "ok" for r in self.rounds):
            return None
        r1, r2 = self.rounds
        return ((r2.model - r1.model) + (r1.reference - r2.reference)) / 2.0  # type: ignore[operator]

    def sample_scores(self) -> dict[str, float]:
        """Per-sample scores: ``score`` and ``reference_score`` ×100, ``position_bias`` (1-10 points)."""
        out: dict[str, float] = {}
        if self.model is not None:
            out["score"] = self.model * 100.0
            out["reference_score"] = self.reference * 100.0  # type: ignore[operator]
        if self.position_bias is not None:
            out["position_bias"] = self.position_bias
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``judge`` field of the sample record."""
        return {"prompt_version": JUDGE_PROMPT_VERSION, "parser": PARSER_VERSION,
                "rounds": [r.to_json() for r in self.rounds]}  # fmt: skip


def read_round(order: str, reply: str, error: str | None, source: str,
               input_tokens: int | None = None, output_tokens: int | None = None) -> RoundResult:  # fmt: skip
    """Turn one judge reply into a :class:`RoundResult` (model/reference scores by position)."""
    tokens = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if error is not None:
        return RoundResult(order, "", "error", source=source, error=error)
    parsed = parse_pair_scores(reply)
    if not parsed.ok:
        return RoundResult(order, reply, parsed.status, source=source, **tokens)
    if order == "reference,model":
        return RoundResult(order, reply, "ok", parsed.second, parsed.first, source, **tokens)
    return RoundResult(order, reply, "ok", parsed.first, parsed.second, source, **tokens)


ROUND_ORDERS = ("reference,model", "model,reference")


def pooled_round_score(items: Sequence[ItemScores], who: str = "model") -> float | None:
    """The official ``eval.py`` pooling — TouchStone's published number: mean of ``who``'s
    (``"model"`` or ``"reference"``) scores over all valid rounds of ``items``, ×100.  Equal to the
    mean of item scores when no round was dropped; with dropped rounds an item with two valid rounds
    weighs twice as much as one with a single valid round."""
    v = [getattr(r, who) for it in items for r in it.valid if getattr(r, who) is not None]
    return math.fsum(v) / len(v) * 100.0 if v else None


def items_from_records_extra(extras: Sequence[Mapping[str, Any] | None]) -> list[ItemScores]:
    """Rebuild :class:`ItemScores` from the ``judge`` fields of sample records."""
    out = []
    for e in extras:
        rounds = []
        for r in (e or {}).get("rounds") or []:
            rounds.append(RoundResult(r.get("order", ""), r.get("reply", ""), r.get("status", "error"),
                                      r.get("model"), r.get("reference"), r.get("source", ""), r.get("error"),
                                      r.get("input_tokens"), r.get("output_tokens")))  # fmt: skip
        out.append(ItemScores(rounds))
    return out
