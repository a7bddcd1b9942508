"""Likelihood-ranked multiple choice (``Request.kind == "choice_logprobs"``).

A request holds a context (its messages: images, video frames, text) and N candidate
continuations (``Request.candidates``, e.g. ``(" A", " B", " C")``). Each candidate is scored by the
log-probability the model gives to its tokens after the context:

* ``sum``: the summed log-probability of the candidate's tokens;
* ``mean``: ``sum / n_tokens`` (length-normalised; Qwen-VL's ``evaluate_multiple_choice.py`` and
  SEED-Bench rank options by the mean token loss, i.e. the highest ``mean``).

The context is rendered as the backend renders a generation prompt (chat template with the
generation prompt, or the Qwen-VL completion format), tokenised once with its images; each
candidate is tokenised on its own (no special tokens) and appended, so the boundary between
context and candidate is exact and the context tokens are never scored.

* transformers (:func:`hf_score_choices`): every (context, candidate) pair of a batch is one row of
  one left-padded forward pass; the context's images are preprocessed once per context and their
  pixel tensors repeated for its candidate rows; the attention mask hides the padding, and only the
  candidate positions are read from the log-softmax (in float32).
* vLLM (:func:`vllm_choice_prompts`, :func:`read_prompt_logprobs`): one token prompt per pair with
  ``SamplingParams(max_tokens=1, prompt_logprobs=0)``; the candidate's log-probabilities are the
  last ``n_tokens`` entries of ``prompt_logprobs``.

The result of one request: ``Response(text=<best candidate by mean>, extra={"logprobs": [{"candidate",
"sum", "mean", "n_tokens"}, ...]})`` (:func:`choice_response`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.types import Request, Response

CHOICE_KIND = "choice_logprobs"
#: how the best candidate is chosen: the highest length-normalised log-probability
SELECTION_RULE = "mean"


def check_choice_requests(requests: Sequence[Request]) -> None:
    """Raise when a request is not a ``choice_logprobs`` request with at least one candidate."""
    for r in requests:
        if r.kind != CHOICE_KIND:
            raise EvalkitError(f"request {r.sample_id}: kind {r.kind!r} is not {CHOICE_KIND!r}")
        if not r.candidates or any(not c for c in r.candidates):
            raise EvalkitError(f"request {r.sample_id}: a choice_logprobs request needs non-empty candidates")


def candidate_score(candidate: str, token_logprobs: Sequence[float]) -> dict[str, Any]:
    """``{"candidate", "sum", "mean", "n_tokens"}`` from the candidate's per-token log-probabilities."""
    values = [float(v) for v in token_logprobs]
    if not values:
        raise EvalkitError(f"candidate {candidate!r} has no tokens")
    total = math.fsum(values)
    return {"candidate": candidate, "sum": total, "mean": total / len(values), "n_tokens": len(values)}


def best_candidate(scores: Sequence[Mapping[str, Any]], rule: str = SELECTION_RULE) -> str:
    """The candidate with the highest ``rule`` score (``mean`` or ``sum``); ties: the first."""
    if rule not in ("mean", "sum"):
        raise ValueError(f"selection rule must be 'mean' or 'sum', got {rule!r}")
    best = max(range(len(scores)), key=lambda i: (scores[i][rule], -i))
    return str(scores[best]["candidate"])


def choice_response(
    scores: Sequence[Mapping[str, Any]], prompt: str | None = None, input_tokens: int | None = None
) -> Response:
    """The Response of one choice request: the best candidate as text, every score in ``extra``."""
    return Response(
        text=best_candidate(scores),
        prompt=prompt,
        input_tokens=input_tokens,
        output_tokens=0,
        extra={"logprobs": [dict(s) for s in scores], "selection": SELECTION_RULE},
    )


# --------------------------------------------------------------------------- transformers
def _repeat_rows(values: Sequence[Any], counts: Sequence[int]) -> Any:
    """Concatenate ``values[i]`` ``counts[i]`` times along the first dimension (tensors or lists)."""
    import torch

    pieces = [v for v, n in zip(values, counts, strict=True) for _ in range(n)]
    if all(isinstance(p, torch.Tensor) for p in pieces):
        return torch.cat(pieces, dim=0)
    return [x for p in pieces for x in (p if isinstance(p, list | tuple) else [p])]


def hf_context_inputs(model: Any, request: Request) -> tuple[str, Any]:
    """The rendered context and its processor output (images/frames preprocessed once)."""
    text = model.render_prompt(request)
    kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
    images = request.images
    if images:
        kwargs["images"] = images
    kwargs.update(model._video_kwargs([request]))
    with model._tokenizer_lock:
        enc = model.processor(**kwargs)
    return text, enc


def candidate_token_ids(tokenizer: Any, candidate: str) -> list[int]:
    """The candidate's own tokens (no special tokens), as appended after the context."""
    ids = list(tokenizer(candidate, add_special_tokens=False)["input_ids"])
    if not ids:
        raise EvalkitError(f"candidate {candidate!r} tokenises to nothing")
    return ids


def hf_score_choices(model: Any, requests: Sequence[Request]) -> list[Response]:
    """Score every candidate of every request in one left-padded forward pass (see module doc);
    ``model`` is a loaded :class:`evalkit.models.hf.HFModel`."""
    import torch

    check_choice_requests(requests)
    if not model.loaded:
        model.load()
    tok = model.processor.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    rows: list[list[int]] = []
    cand_lens: list[int] = []
    contexts: list[tuple[str, Any]] = []
    extras: dict[str, list[Any]] = {}
    #: per-token processor outputs other than the ids (e.g. ``mm_token_type_ids``): padded like them
    token_rows: dict[str, list[list[int]]] = {}
    for request in requests:
        text, enc = hf_context_inputs(model, request)
        contexts.append((text, enc))
        ctx_ids = enc["input_ids"][0].tolist()
        per_token = [
            k
            for k, v in enc.items()
            if k not in ("input_ids", "attention_mask")
            and isinstance(v, torch.Tensor)
            and v.ndim == 2
            and tuple(v.shape) == tuple(enc["input_ids"].shape)
        ]
        for candidate in request.candidates:
            ids = candidate_token_ids(tok, candidate)
            rows.append(ctx_ids + ids)
            cand_lens.append(len(ids))
            for key in per_token:  # candidate tokens are text: value 0
                token_rows.setdefault(key, []).append(enc[key][0].tolist() + [0] * len(ids))
        for key, value in enc.items():  # image/video tensors: (value, rows) per context that has them
            if key not in ("input_ids", "attention_mask") and key not in per_token:
                extras.setdefault(key, []).append((value, len(request.candidates)))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):  # left padding: every row ends at the last column
        input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention[i, width - len(row) :] = 1
    inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention}
    for key, values_rows in token_rows.items():
        if len(values_rows) == len(rows):
            padded = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row_values in enumerate(values_rows):
                padded[i, width - len(row_values) :] = torch.tensor(row_values, dtype=torch.long)
            inputs[key] = padded
    for key, pairs in extras.items():  # in row order, contexts without images contributing nothing
        inputs[key] = _repeat_rows([v for v, _ in pairs], [n for _, n in pairs])
    inputs = {k: (v.to(model.device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
    with torch.inference_mode():
        logits = model.model(**inputs).logits
    logprobs = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    targets = inputs["input_ids"][:, 1:]
    token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
    responses: list[Response] = []
    row = 0
    for request, (text, enc) in zip(requests, contexts, strict=True):
        scores = []
        for candidate in request.candidates:
            n = cand_lens[row]
            scores.append(candidate_score(candidate, token_lp[row, -n:].tolist()))
            row += 1
        responses.append(choice_response(scores, prompt=text, input_tokens=int(enc["input_ids"].shape[1])))
    return responses


# --------------------------------------------------------------------------- vLLM
def vllm_choice_prompts(
    requests: Sequence[Request],
    contexts: Sequence[str],
    tokenizer: Any,
    base: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[int]]:
    """``(prompts, n_tokens)``: one vLLM token prompt per (request, candidate) pair, in order.

    ``base`` holds the backend's generation prompt dict of each request (``{"prompt", "multi_modal_data",
    ...}``, from :func:`evalkit.models.vllm.build_llm_inputs` or, for Qwen-VL,
    :func:`evalkit.models.qwen_vl.vllm_inputs`). Each pair becomes ``{"prompt_token_ids": context
    tokens + candidate tokens, <the rest of base>}`` (vLLM expands the image placeholders itself),
    ``n_tokens`` the candidate's token count (the last entries of ``prompt_logprobs``). Pure: no vLLM
    needed."""
    check_choice_requests(requests)
    if len(base) != len(requests):
        raise EvalkitError(f"{len(base)} prompt dicts for {len(requests)} requests")
    prompts: list[dict[str, Any]] = []
    n_tokens: list[int] = []
    for request, context, item in zip(requests, contexts, base, strict=True):
        ctx_ids = list(tokenizer(context)["input_ids"])
        for candidate in request.candidates:
            ids = candidate_token_ids(tokenizer, candidate)
            prompt = {k: v for k, v in item.items() if k != "prompt"}
            prompt["prompt_token_ids"] = ctx_ids + ids
            prompts.append(prompt)
            n_tokens.append(len(ids))
    return prompts, n_tokens


def choice_sampling_kwargs() -> dict[str, Any]:
    """``vllm.SamplingParams`` for scoring: one throw-away token, the prompt's own log-probabilities."""
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}


def _logprob_value(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def read_prompt_logprobs(
    prompt_token_ids: Sequence[int], prompt_logprobs: Sequence[Any], n_tokens: int
) -> list[float]:
    """The log-probabilities of the last ``n_tokens`` prompt tokens from vLLM's ``prompt_logprobs``
    (one ``{token_id: Logprob}`` per prompt position, ``None`` for the first)."""
    if n_tokens <= 0 or n_tokens >= len(prompt_token_ids) or len(prompt_logprobs) != len(prompt_token_ids):
        raise EvalkitError(
            f"cannot read {n_tokens} candidate log-probabilities from {len(prompt_logprobs)} prompt positions"
        )
    out = []
    for pos in range(len(prompt_token_ids) - n_tokens, len(prompt_token_ids)):
        entry = prompt_logprobs[pos]
        token = prompt_token_ids[pos]
        if not entry or token not in entry:
            raise EvalkitError(f"vLLM returned no log-probability for prompt token {token} at position {pos}")
        out.append(_logprob_value(entry[token]))
    return out


def vllm_score_choices(
    llm: Any,
    sampling_cls: Any,
    tokenizer: Any,
    requests: Sequence[Request],
    contexts: Sequence[str],
    base: Sequence[Mapping[str, Any]],
) -> list[Response]:
    """Score every candidate with one ``llm.generate`` call (``prompt_logprobs``); ``contexts`` are
    the rendered prompts and ``base`` the generation prompt dicts of the requests."""
    prompts, n_tokens = vllm_choice_prompts(requests, contexts, tokenizer, base)
    params = sampling_cls(**choice_sampling_kwargs())
    outputs = llm.generate(prompts, params, use_tqdm=False)
    responses: list[Response] = []
    k = 0
    for request, context in zip(requests, contexts, strict=True):
        scores = []
        for candidate in request.candidates:
            out = outputs[k]
            values = read_prompt_logprobs(out.prompt_token_ids, out.prompt_logprobs, n_tokens[k])
            scores.append(candidate_score(candidate, values))
            k += 1
        responses.append(choice_response(scores, prompt=context))
    return responses
