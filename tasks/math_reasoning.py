"""Visual math reasoning: MathVista (testmini) and MATH-Vision.

MathVista (``AI4Math/MathVista``, split ``testmini``, 1,000 rows)
------------------------------------------------------------------
Columns: ``pid``, ``question``, ``image`` (file name), ``decoded_image`` (the image), ``choices``
(list or null), ``unit``, ``precision`` (decimals of a float answer), ``answer``, ``question_type``
(``multi_choice`` / ``free_form``), ``answer_type`` (``text`` / ``integer`` / ``float`` / ``list``),
``metadata`` (``category``, ``context``, ``grade``, ``language``, ``skills``, ``source``, ``split``,
``task``, image size), ``query`` (the official prompt with its hint).

Scoring (MathVista ``extract_answer.py`` + ``calculate_score.py``):

1. **extraction** — the official protocol returns the response itself when it is one of the choices
   (multiple choice) or parses as an int / float (integer / float answers), and otherwise asks an
   LLM (GPT-4) to extract the answer. ``extractor: auto`` does exactly that when a judge is
   configured (``judge=gpt-4 …``; cached, cost-capped, its identity recorded), and otherwise uses
   the deterministic :func:`rule_extract` — recorded as ``protocol.extractor`` and per sample as
   ``extraction_source`` (``direct``, ``rule`` or ``llm``);
2. **normalisation** (:func:`normalize_extracted_answer`) — multiple choice: a letter ``(A)`` / ``A``
   becomes its option text, anything else the most similar option (Levenshtein); integer:
   ``str(int(float(x)))``; float: ``str(round(float(x), precision))``; list: ``str(x)``;
3. **match** — ``str(normalised).strip() == str(answer).strip()``.

Breakdowns: task, skills (a question counts for each skill), question type, answer type, category,
grade, context, source, language.

MATH-Vision (``MathLLMs/MathVision``, split ``test`` 3,040 rows / ``testmini`` 304)
-----------------------------------------------------------------------------------
Columns: ``id``, ``question``, ``options`` (list, empty for free-form), ``image`` (file name),
``decoded_image``, ``answer`` (a letter for multiple choice), ``solution``, ``level`` (1-5),
``subject``.

Scoring (MATH-V ``evaluation/evaluate.py``, rule based): :func:`mathvision_extract` (a trailing
letter, "the answer is …", the last ``\\boxed{…}``, then MATH-style cleanup), and
:func:`mathvision_is_equal` against the gold letter or the gold option text (case-insensitive
equality, tuples compared element-wise, else equal values rounded to 2 decimals). The official code ``eval``s the strings and parses LaTeX
with ``latex2sympy``; here :func:`math_value` evaluates the same numeric subset (arithmetic,
``\\frac``, ``\\sqrt``, ``\\pi``, powers) safely, without executing model output.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.plugins.mmmu import option_letters, parse_multi_choice_response
from evalkit.plugins.vqa import PromptedImageQATask, question_fields

from evalkit.errors import InputError, UsageError
from evalkit.tasks.base import MetricSpec
from evalkit.types import Record, Sample

# =========================================================================== shared helpers


def _gold_string(sample: Sample, column: str) -> str:
    """The sample's gold answer, a non-empty string; an :class:`InputError` otherwise."""
    target = sample.target
    if not isinstance(target, str) or not target.strip():
        raise InputError(f"missing gold answer in '{column}'")
    return target


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


_BIN_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
            ast.Pow: operator.pow, ast.Mod: operator.mod}  # fmt: skip
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_NAMES = {"pi": math.pi, "e": math.e}
_FUNCS = {"sqrt": math.sqrt}


def safe_arithmetic(expr: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + - * / ** %, parentheses, ``pi``,
    ``sqrt(...)``), or None. Never executes anything else."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return float(_BIN_OPS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return float(_UNARY_OPS[type(node.op)](ev(node.operand)))
        if isinstance(node, ast.Name) and node.id in _NAMES:
            return _NAMES[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and len(node.args) == 1
            and not node.keywords
        ):
            return float(_FUNCS[node.func.id](ev(node.args[0])))
        raise ValueError("unsupported expression")

    try:
        value = ev(tree)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    return value if math.isfinite(value) else None


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group opening at ``text[start]`` and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def latex_to_arithmetic(text: str) -> str:
    """Rewrite the numeric LaTeX subset into plain arithmetic: ``\\frac{a}{b}`` -> ``((a)/(b))``,
    ``\\sqrt{a}`` -> ``sqrt(a)``, ``\\pi`` -> ``pi``, ``\\cdot``/``\\times`` -> ``*``, ``^`` -> ``**``,
    ``{}`` -> ``()``."""
    out = (
        text.replace("\\left", "")
        .replace("\\right", "")
        .replace("\\dfrac", "\\frac")
        .replace("\\tfrac", "\\frac")
    )
    out = out.replace("\\cdot", "*").replace("\\times", "*").replace("\\pi", "pi").replace("$", "")
    for _ in range(20):  # innermost-first rewriting of \frac / \sqrt
        m = re.search(r"\\(frac|sqrt)", out)
        if not m:
            break
        if m.group(1) == "frac":
            first = _braced(out, m.end())
            second = _braced(out, first[1]) if first else None
            if not first or not second:
                return out
            out = out[: m.start()] + f"(({first[0]})/({second[0]}))" + out[second[1] :]
        else:
            arg = _braced(out, m.end())
            if not arg:
                return out
            out = out[: m.start()] + f"sqrt({arg[0]})" + out[arg[1] :]
    return out.replace("^", "**").replace("{", "(").replace("}", ")")


def math_value(text: str) -> float | None:
    """The numeric value of a plain or LaTeX expression (None when it is not numeric)."""
    value = safe_arithmetic(text.replace(",", "")) if "\\" not in text else None
    if value is None:
        value = safe_arithmetic(latex_to_arithmetic(text))
    return value


# =========================================================================== MathVista
MATHVISTA_BREAKDOWNS = ("task", "skills", "question_type", "answer_type", "category", "grade", "context",
                        "source", "language")  # fmt: skip


def mathvista_hint(question_type: str, answer_type: str, precision: int | None) -> str:
    """The answer-format sentence of lmms-eval's ``format-prompt`` (the Qwen2-VL prompt)."""
    if question_type == "multi_choice":
        return "Answer with the option's letter from the given choices directly."
    if answer_type == "integer":
        return "Answer the question using a single integer number."
    if answer_type == "float":
        if precision == 1:
            return "Answer the question using a single floating-point number with one decimal place."
        if precision == 2:
            return "Answer the question using a single floating-point number with two decimal places."
        return f"Answer the question using a single floating-point number with {precision} decimal places."
    if answer_type == "list":
        return "Answer the question using a Python list."
    return ""


def mathvista_format_prompt(
    question: str, choices: Sequence[str] | None, unit: str | None, question_type: str, answer_type: str,
    precision: int | None,
) -> str:  # fmt: skip
    """lmms-eval's MathVista ``format-prompt`` query: question (+ ``(Unit: u)``), ``A. …`` choice
    lines, the answer-format hint, joined by newlines."""
    question_text = question + (f" (Unit: {unit})" if unit else "")
    choices_text = "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices or []))
    parts = [question_text, choices_text, mathvista_hint(question_type, answer_type, precision)]
    return "\n".join(p for p in parts if p)


def direct_extract(
    response: str, choices: Sequence[str] | None, question_type: str, answer_type: str
) -> str | None:
    """The official extractor's steps before it asks the LLM: the response itself when it is a
    choice, or when it parses as an int (integer answers) / a float (float answers). None otherwise."""
    if not response:
        return ""
    if question_type == "multi_choice" and choices and response in choices:
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    return None


_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")
_ANSWER_CUE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*", re.IGNORECASE)


def rule_extract(response: str, choices: Sequence[str] | None, question_type: str, answer_type: str) -> str:
    """evalkit's deterministic stand-in for the LLM extraction step (versioned with the task).

    After :func:`direct_extract`: the quoted answer of ``The answer is "…".``; then the text after
    the last "answer is" / "Answer:" cue (else the whole response) is read as — multiple choice: the
    option letter by MMMU's parser (lmms-eval variant), else the text itself (normalisation then
    picks the most similar option); integer/float: its last number; list: its last ``[...]``."""
    direct = direct_extract(response, choices, question_type, answer_type)
    if direct is not None:
        return direct
    quoted = re.search(r'The answer is "(.*)"\.', response)
    if quoted:
        return quoted.group(1)
    cues = list(_ANSWER_CUE.finditer(response))
    tail = response[cues[-1].end() :] if cues else response
    tail = tail.strip()
    if question_type == "multi_choice":
        letter = parse_multi_choice_response(tail, list(choices or []), "lmms_eval") if choices else None
        return letter if letter is not None else tail.strip().rstrip(".")
    if answer_type in ("integer", "float"):
        numbers = _NUMBER.findall(tail) or _NUMBER.findall(response)
        return numbers[-1].replace(",", "") if numbers else tail
    if answer_type == "list":
        lists = re.findall(r"\[[^\[\]]*\]", tail) or re.findall(r"\[[^\[\]]*\]", response)
        return lists[-1] if lists else tail
    return tail


def normalize_extracted_answer(
    extraction: Any,
    choices: Sequence[str] | None,
    question_type: str,
    answer_type: str,
    precision: int | None,
) -> str | None:
    """MathVista ``normalize_extracted_answer`` (see the module docstring)."""
    if question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letter = re.findall(r"\(([a-zA-Z])\)", text)
        if letter:
            text = letter[0].upper()
        options = list(choices or [])
        letters = option_letters(len(options))
        if text in letters:
            return options[letters.index(text)]
        if not options:
            return None
        distances = [edit_distance(text, c) for c in options]
        return options[distances.index(min(distances))]
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision or 0)))
    except (TypeError, ValueError, OverflowError):
        return None
    if answer_type == "list":
        return str(extraction)
    return str(extraction)


def safe_equal(prediction: Any, answer: Any) -> bool:
    """``str(prediction).strip() == str(answer).strip()`` (None never matches)."""
    return prediction is not None and str(prediction).strip() == str(answer).strip()


_EXTRACT_INSTRUCTIONS = (
    "You read a model's answer to a math question about an image and copy out its final answer, "
    "nothing else.\n"
    "- Multiple-choice questions: reply with the option letter the answer picks (A, B, ...).\n"
    "- Integer answers: reply with the integer. Decimal answers: reply with the number. List answers: "
    "reply with a Python list such as [1, 2].\n"
    "- Drop units and words. If the answer gives no final answer, reply with nothing.\n\n"
    "Example 1\nQuestion: How many balls are left? Answer the question using a single integer number.\n"
    "Model answer: After removing two of the five balls, three remain.\nExtracted answer: 3\n\n"
    "Example 2\nQuestion: Which angle is largest?\nA. 30\nB. 45\nC. 90\n"
    "Model answer: The right angle, 90 degrees, so option C.\nExtracted answer: C\n\n"
)
EXTRACT_PROMPT_VERSION = "mathvista-extract-1"


def extraction_messages(query: str, response: str) -> list[dict[str, str]]:
    """The judge conversation asking for the final answer of one response."""
    text = f"{_EXTRACT_INSTRUCTIONS}Question: {query.strip()}\nModel answer: {response.strip()}\nExtracted answer:"
    return [{"role": "user", "content": text}]


class MathVistaTask(PromptedImageQATask):
    """MathVista testmini: answer extraction (LLM judge or deterministic rules), MathVista's
    normalisation by answer type / precision, accuracy per task and skill."""

    version = "1"
    id_column = "pid"
    answer_column = "answer"
    image_column = "decoded_image"
    extra_columns = ("question_type", "answer_type", "metadata", "choices", "precision")
    breakdown_keys = MATHVISTA_BREAKDOWNS
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    scorer = "exact_match"
    extra_fields = frozenset({"query", "format_prompt"})

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.judge_summary: dict[str, Any] | None = None
        _ = self.extractor  # a bad extractor / missing judge is refused before any generation

    # ----------------------------------------------------------------- config
    def _judge_config(self) -> Mapping[str, Any] | None:
        from evalkit.judge.client import _is_none_judge

        cfg = self.config.get("judge")
        return None if _is_none_judge(cfg) else cfg

    @property
    def extractor(self) -> str:
        """``judge`` or ``rule``: ``extractor: auto`` is judge exactly when a judge is configured."""
        value = str(self.config.get("extractor") or "auto")
        if value not in ("auto", "judge", "rule"):
            raise UsageError(f"task {self.name}: extractor must be auto, judge or rule, got {value!r}")
        if value == "judge" and self._judge_config() is None:
            raise UsageError(
                f"task {self.name}: extractor=judge needs an LLM judge: pass judge=gpt-4 "
                "(or judge=local judge.base_url=<url>)"
            )
        if value == "auto":
            return "judge" if self._judge_config() is not None else "rule"
        return value

    # ----------------------------------------------------------------- samples
    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """Question / answer type and the ``metadata`` struct's fields (task, skills, …)."""
        meta: dict[str, Any] = {}
        for key in ("question_type", "answer_type"):
            if values.get(key) is not None:
                meta[key] = values[key]
        inner = values.get("metadata")
        if isinstance(inner, Mapping):
            for key in ("task", "skills", "category", "grade", "context", "source", "language"):
                if inner.get(key) is not None:
                    meta[key] = list(inner[key]) if key == "skills" else inner[key]
        if values.get("precision") is not None:
            meta["precision"] = int(values["precision"])
        return meta

    def _problem(self, sample: Sample) -> tuple[list[str] | None, str, str, int | None]:
        row = self._problem_cache().get(sample.index)
        if row is None:
            raise InputError("row not found")
        return row

    def _problem_cache(self) -> dict[int, tuple[list[str] | None, str, str, int | None]]:
        if not hasattr(self, "_problems"):
            cols = self._columns(["choices", "question_type", "answer_type", "precision"])
            self._problems = {
                i: (
                    list(cols["choices"][i]) if isinstance(cols["choices"][i], list) else None,
                    str(cols["question_type"][i] or ""),
                    str(cols["answer_type"][i] or ""),
                    int(cols["precision"][i]) if cols["precision"][i] is not None else None,
                )
                for i in range(len(self.dataset))
            }
        return self._problems

    def check_target(self, sample: Sample) -> list[str]:
        """The gold answer (a string) and a known question type."""
        target = _gold_string(sample, self.answer_column)
        choices, qtype, atype, _ = self._problem(sample)
        if qtype not in ("multi_choice", "free_form"):
            raise InputError(f"unknown question_type {qtype!r}")
        if qtype == "multi_choice" and not choices:
            raise InputError("multi_choice question without choices")
        return [target]

    # ----------------------------------------------------------------- requests
    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """``{question}``, ``{query}`` (the dataset's official prompt) and ``{format_prompt}``."""
        question = self.question(dict(row))
        choices, qtype, atype, precision = self._problem(sample)
        query = row.get("query")
        return {
            **question_fields(question),
            "query": query if isinstance(query, str) and query.strip() else question,
            "format_prompt": mathvista_format_prompt(
                question, choices, row.get("unit"), qtype, atype, precision
            ),
        }

    # ----------------------------------------------------------------- scoring
    def extract(self, sample: Sample, prediction: str) -> tuple[str, str]:
        """``(extraction, source)`` without the judge: ``direct`` (the official first steps) or ``rule``."""
        choices, qtype, atype, _ = self._problem(sample)
        direct = direct_extract(prediction, choices, qtype, atype)
        if direct is not None:
            return direct, "direct"
        return rule_extract(prediction, choices, qtype, atype), "rule"

    def judge_score(self, sample: Sample, extraction: Any) -> tuple[str | None, float]:
        """The normalised answer and 1.0 / 0.0."""
        choices, qtype, atype, precision = self._problem(sample)
        normalised = normalize_extracted_answer(extraction, choices, qtype, atype, precision)
        return normalised, 1.0 if safe_equal(normalised, sample.target) else 0.0

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Accuracy after rule-based (or direct) extraction; the judge phase may replace it."""
        self.scored_answers(sample)  # unusable gold: a per-sample score error
        extraction, _ = self.extract(sample, prediction)
        return {"accuracy": self.judge_score(sample, extraction)[1]}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extraction``, ``extraction_source`` and the ``normalized`` answer."""
        try:
            extraction, source = self.extract(sample, prediction)
            normalised, _ = self.judge_score(sample, extraction)
        except InputError:
            return {}
        return {"extraction": extraction, "extraction_source": source, "normalized": normalised}

    # ----------------------------------------------------------------- judge phase
    def _judge(self, config: Mapping[str, Any], output_dir: Any) -> Any:
        from evalkit.judge.client import LLMJudge

        return LLMJudge.from_run_config(
            config, self._judge_config(), Path(output_dir), f"{self.name}-extract"
        )

    def before_run(self, config: Mapping[str, Any], output_dir: Path) -> None:
        """Health-check the extraction judge before any model work (when it is used)."""
        if self.extractor == "judge":
            judge = self._judge(config, output_dir)
            try:
                judge.health_check()
            finally:
                judge.close()

    def after_generation(
        self, records: list[Record], config: Mapping[str, Any], output_dir: Path
    ) -> list[Record]:
        """With the judge: every answer the official first steps cannot read is extracted by the LLM
        (cached, logged, capped by ``judge.max_cost``) and re-scored."""
        if self.extractor != "judge":
            return records
        by_id = {s.id: s for s in self.samples()}
        todo = [r for r in records if r.error is None and isinstance(r.prediction, str)
                and r.extra.get("extraction_source") == "rule" and r.id in by_id]  # fmt: skip
        judge = self._judge(config, output_dir)
        try:
            if todo:
                queries = []
                for r in todo:
                    row = self.row(by_id[r.id])
                    queries.append(self.prompt_fields(by_id[r.id], row)["query"])
                convs = [extraction_messages(q, r.prediction) for q, r in zip(queries, todo, strict=True)]
                results = judge.judge_many(convs, labels=[r.id for r in todo], params={"max_tokens": 64})
                for r, j in zip(todo, results, strict=True):
                    if not j.ok:
                        r.extra["extraction_error"] = j.error
                        continue
                    normalised, value = self.judge_score(by_id[r.id], j.text.strip())
                    r.extra.update(extraction=j.text.strip(), extraction_source="llm", normalized=normalised)
                    r.scores["accuracy"] = value
            self.judge_summary = {**judge.describe(), "prompt_version": EXTRACT_PROMPT_VERSION}
        finally:
            judge.close()
        return records

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """How each scored answer was extracted (``extracted_direct`` / ``_rule`` / ``_llm``)."""
        out = {f"extracted_{k}": 0 for k in ("direct", "rule", "llm")}
        for r in records:
            source = r.extra.get("extraction_source")
            if r.error is None and source in ("direct", "rule", "llm"):
                out[f"extracted_{source}"] += 1
        return out

    def protocol(self) -> dict[str, Any]:
        """Extractor (and the judge that extracted), normalisation and match rules."""
        out = super().protocol()
        out["extractor"] = self.extractor
        out["extractor_note"] = (
            "official: LLM extraction (GPT-4) after the direct steps"
            if self.extractor == "judge"
            else "deterministic rule-based extraction (no judge configured); the official protocol uses an LLM"
        )
        if self.judge_summary:
            out["judge"] = self.judge_summary
        out["metric"] = (
            "accuracy: extraction, MathVista normalize_extracted_answer (choice letter/most similar option, "
            "int, round(float, precision), list), then str(pred).strip() == str(answer).strip()"
        )
        return out


# =========================================================================== MATH-Vision
def _fix_fracs(text: str) -> str:
    """MATH normaliser: ``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{2}`` -> ``\\frac{1}{2}``."""
    pieces = text.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if piece.startswith("{"):
            out += piece
            continue
        if len(piece) < 2:
            return text
        a, b = piece[0], piece[1]
        if b != "{":
            out += "{" + a + "}{" + b + "}" + piece[2:]
        else:
            out += "{" + a + "}" + b + piece[2:]
    return out


def _fix_a_slash_b(text: str) -> str:
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return text
    return "\\frac{" + str(a) + "}{" + str(b) + "}" if text == f"{a}/{b}" else text


def _fix_sqrt(text: str) -> str:
    if "\\sqrt" not in text:
        return text
    pieces = text.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\sqrt{" + piece[0] + "}" + piece[1:] if piece and piece[0] != "{" else "\\sqrt" + piece
    return out


def strip_math_string(text: str) -> str:
    """The MATH dataset's answer normaliser (``_strip_string``) as MATH-V uses it."""
    s = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2:
        s = s.split("=")[-1]
    if len(s.split("\\approx")) == 2:
        s = s.split("\\approx")[-1]
    if "sqrt" in s:
        s = _fix_sqrt(s)
    s = s.replace(" ", "")
    if "sqrt" in s:
        s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def find_math_answer(text: str) -> str:
    """MATH-V ``find_math_answer``: the last ``\\boxed{…}`` content (greedy, as the official regex),
    cut at an unmatched ``}``, after the last ``=`` / ``\\approx``, units and LaTeX noise removed."""
    s = text.lower().replace("{}", "")
    boxed = re.findall(r"oxed{(.*)}", s, flags=re.S)
    ans = boxed[-1] if boxed else s
    if "}" in ans and ("{" not in ans or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    ans = ans.replace(" ", "").replace("\\,", "").replace("∞", "\\infty").replace("+\\infty", "\\infty")
    ans = ans.replace("\\\\", "\\").replace("\n", "").replace("\\text", "").replace("\\mbox", "")
    ans = ans.replace("bmatrix", "pmatrix").replace("\\left", "").replace("\\right", "")
    ans = ans.replace("^{\\circ}", "").replace("^\\circ", "").replace("{m}^3", "").replace("m^3", "")
    ans = ans.replace("{units}", "").replace("units", "").replace("{km}", "").replace("km", "")
    return strip_math_string(ans)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


_ANSWER_FLAGS = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")


def mathvision_extract(response: str) -> str:
    """MATH-V's answer extraction from a response (see the module docstring)."""
    answer = response.strip()
    for c in "ABCDE":
        if (
            answer.endswith(f" {c}.")
            or answer.endswith(f" ({c}).")
            or answer.startswith(f"{c}\n")
            or answer.startswith(f"({c})\n")
            or answer.startswith(f"({c}) {c}\n")
        ):
            answer = c
    tail = answer.split("is ")[-1].rstrip(".")
    if _is_number(tail):
        answer = tail
    if "oxed{" not in answer:
        for flag in _ANSWER_FLAGS:
            for variant in (flag, flag.replace("the", "The")):
                before = answer
                answer = answer.split(variant)[-1].strip()
                if variant in before:
                    answer = answer.split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    answer = find_math_answer(answer)
    for c in "abcde":
        answer = answer.replace(f"({c})", c).replace("{" + c + "}", c)
    return answer.rstrip(".").lstrip(":").strip()


def _eval_tuple(text: str) -> str:
    """MATH-V ``eval_tuple``: a ``(a,b,...)`` / ``[a,b,...]`` of several elements with each element's
    value rounded to 2 decimals (``infty``, ``a``, ``-a`` kept); unchanged when one fails."""
    inner = text[1:-1].split(",")
    if len(text) < 2 or len(inner) < 2 or (text[0], text[-1]) not in (("(", ")"), ("[", "]")):
        return text
    parts = []
    for element in inner:
        if "infty" in element or element in ("a", "-a"):
            parts.append(element)
            continue
        value = math_value(element)
        if value is None:
            return text
        parts.append(str(round(value, 2)))
    return text[0] + ",".join(parts) + text[-1]


def mathvision_is_equal(answer: str, gold: str) -> bool:
    """MATH-V ``is_equal``: lower-cased; an empty side never matches; equal after stripping; equal
    after :func:`_eval_tuple`; else equal numeric values rounded to 2 decimals."""
    a, g = str(answer).lower(), str(gold).lower()
    if not a.replace(" ", "") or not g.replace(" ", ""):
        return False
    if a.strip() == g.strip():
        return True
    a, g = _eval_tuple(a), _eval_tuple(g)
    if a == g:
        return True
    va, vg = math_value(a), math_value(g)
    return va is not None and vg is not None and round(va, 2) == round(vg, 2)


class MathVisionTask(PromptedImageQATask):
    """MATH-Vision: official rule-based extraction and matching; accuracy per subject and level."""

    version = "1"
    id_column = "id"
    answer_column = "answer"
    image_column = "decoded_image"
    extra_columns = ("subject", "level", "options")
    breakdown_keys = ("subject", "level", "question_type")
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    scorer = "exact_match"
    extra_fields = frozenset({"options", "options_paren", "instruction"})

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """Subject, level and ``question_type`` (multiple_choice when the row has options)."""
        meta: dict[str, Any] = {}
        if values.get("subject") is not None:
            meta["subject"] = values["subject"]
        if values.get("level") is not None:
            meta["level"] = values["level"]
        options = values.get("options")
        meta["question_type"] = "multiple_choice" if isinstance(options, list) and options else "free_form"
        return meta

    def _options(self, sample: Sample) -> list[str]:
        if not hasattr(self, "_option_cache"):
            self._option_cache = self._columns(["options"])["options"]
        value = self._option_cache[sample.index]
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
            raise InputError("'options' must be a list of strings")
        return list(value)

    def check_target(self, sample: Sample) -> list[str]:
        """The gold answer; for multiple choice a letter naming one of the options."""
        target = _gold_string(sample, self.answer_column)
        options = self._options(sample)
        if options:
            idx = ord(target.strip().upper()[0]) - ord("A") if len(target.strip()) == 1 else -1
            if not 0 <= idx < len(options):
                raise InputError(f"gold answer {target!r} names no option of {len(options)}")
        return [target]

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """``{question}``, ``{options}`` (``\\nA. …`` lines, empty for free-form), ``{options_paren}``
        (MATH-V's ``(A) …`` lines, each ending in a newline; empty when the options are just the
        letters A-E, as MATH-V's own scripts do) and ``{instruction}``."""
        question = self.question(dict(row))
        options = self._options(sample)
        kind = "multiple_choice" if options else "free_form"
        lines = "\n".join(
            f"{letter}. {text}" for letter, text in zip(option_letters(len(options)), options, strict=True)
        )
        return {
            **question_fields(question),
            "options": ("\n" + lines) if lines else "",
            "options_paren": ""
            if not options or "".join(options) == "ABCDE"
            else "".join(
                f"({letter}) {text}\n"
                for letter, text in zip(option_letters(len(options)), options, strict=True)
            ),
            "instruction": str((self.config.get("instructions") or {}).get(kind) or ""),
        }

    def gold_values(self, sample: Sample) -> tuple[str, str]:
        """``(gold answer, gold option text or "")``."""
        gold = str(sample.target).strip()
        options = self._options(sample)
        value = options[ord(gold.upper()) - ord("A")] if options and len(gold) == 1 else ""
        return gold, value

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """1.0 when the extracted answer equals the gold letter or the gold option's text."""
        self.scored_answers(sample)  # unusable gold: a per-sample score error
        extracted = mathvision_extract(prediction if isinstance(prediction, str) else "")
        gold, value = self.gold_values(sample)
        ok = mathvision_is_equal(extracted, gold) or (bool(value) and mathvision_is_equal(extracted, value))
        return {"accuracy": 1.0 if ok else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted``: the answer read from the response."""
        return {"extracted": mathvision_extract(prediction if isinstance(prediction, str) else "")}

    def protocol(self) -> dict[str, Any]:
        """The matching rule."""
        out = super().protocol()
        out["instructions"] = dict(self.config.get("instructions") or {})
        out["metric"] = (
            "accuracy: MATH-V rule-based extraction (trailing letter, 'the answer is', last \\boxed{}, MATH "
            "normalisation) equal (case-insensitive, or numerically at 2 decimals) to the gold letter or option text"
        )
        return out
