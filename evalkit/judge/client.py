"""The LLM judge: one OpenAI-compatible chat model that scores other models' answers.

:class:`LLMJudge` is built from the ``judge`` config group (``configs/judge/<name>.yaml``) and is
reusable by any task (TouchStone's pairwise scoring, open-ended VQA, a fallback extractor for
multiple-choice letters). Every judge request goes through the same machinery as model requests:

* HTTP: :class:`~evalkit.models.http_client.ChatClient` — concurrency, retries with backoff and
  ``Retry-After``, timeouts, key redaction, usage totals, health check. One client, not two.
* Cache: a :class:`~evalkit.runner.cache.ResponseCache` of its own (``<cache_dir>/judgments.sqlite``),
  content-addressed: key = sha256(judge identity hash, sha256 of the full request — messages and
  parameters). Re-scoring with the same judge and the same inputs never calls the API again.
* Durability: every finished judgment is appended (and fsynced) to
  ``<output_dir>/judgments/<task>.jsonl`` before the next batch is sent, so a crash or a cost stop
  mid-judging resumes without paying again, even with the cache switched off.
* Cost: token usage and an estimated cost (``price_per_1k_input``/``price_per_1k_output``).
  ``max_cost`` is checked *before* each batch with a worst-case estimate (input ≈ UTF-8 bytes / 3
  tokens, output = ``max_tokens``); when the next request could exceed it, judging stops with
  :class:`JudgeCostLimitError` — finished judgments are saved; raise the cap and rerun.

The judge never falls back silently to another scoring method: a judge that cannot be reached or
is misconfigured stops the run with one clear line (:meth:`LLMJudge.health_check`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, UsageError
from evalkit.models.http_client import (
    ChatClient,
    ChatError,
    _plain,
    api_key_from_env,
    client_tuning,
    public_url,
)

#: judge config keys that change what the judge answers (part of its identity)
_IDENTITY_KEYS = ("model", "temperature", "max_tokens", "seed", "extra_body", "stop")
#: the judge config named ``none`` (configs/judge/none.yaml) means "no judge configured"
NO_JUDGE = "none"


class JudgeError(EvalkitError):
    """The judge is unusable (unreachable, unauthorised, misconfigured): the run stops."""


class JudgeCostLimitError(EvalkitError):
    """Judging stopped before ``judge.max_cost`` could be exceeded (resumable)."""


@dataclass
class Judgment:
    """One judge reply (or failure) for one request.

    Attributes:
        key: the content address of the request (judge identity + request).
        text: the reply ("" on failure).
        input_tokens, output_tokens: usage as the API reported it (for cached judgments: as it was
            reported when the judgment was first made).
        source: ``"api"`` (paid now), ``"cache"`` (response cache), ``"log"`` (this output
            directory's durable judgment log), or ``"error"``.
        error: one redacted line when the request failed after retries (never cached or logged;
            retried on the next run).
    """

    key: str
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    source: str = "api"
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the judge answered."""
        return self.error is None


@dataclass
class JudgeUsage:
    """What judging cost in this process (API calls) and what the judgments used in total."""

    api_requests: int = 0
    failed_requests: int = 0
    from_cache: int = 0
    from_log: int = 0
    api_input_tokens: int = 0
    api_output_tokens: int = 0
    api_cost: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return {
            "api_requests": self.api_requests,
            "failed_requests": self.failed_requests,
            "from_cache": self.from_cache,
            "from_log": self.from_log,
            "api_input_tokens": self.api_input_tokens,
            "api_output_tokens": self.api_output_tokens,
            "api_cost": round(self.api_cost, 6),
        }


def request_fingerprint(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """sha256 of a judge request (messages and chat parameters, canonical JSON)."""
    blob = json.dumps(
        {"messages": list(messages), "params": dict(params)}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def estimate_input_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A deliberately high token estimate for text messages: UTF-8 bytes / 3 (+ 8 per message).

    English runs ~4 bytes per token and CJK ~3, so this over-counts; it is only used to decide
    whether the next request could exceed ``max_cost``."""
    n = 0
    for m in messages:
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        n += math.ceil(len(str(text).encode("utf-8")) / 3) + 8
    return n


def _is_none_judge(config: Mapping[str, Any] | None) -> bool:
    return not config or str(config.get("name") or NO_JUDGE) == NO_JUDGE


class LLMJudge:
    """A judge model behind an OpenAI-compatible endpoint (see the module docstring).

    Args:
        config: the resolved ``judge`` config group: ``name`` (the preset), ``model`` (sent to the
            API), ``base_url``, ``api_key_env``, ``concurrency``, ``timeout_s``, ``max_retries``,
            ``temperature`` (0), ``max_tokens``, ``price_per_1k_input``, ``price_per_1k_output``,
            ``max_cost``, ``cache`` (true), ``extra_body``, ``seed``, ``stop``.
        cache_dir: folder of ``judgments.sqlite`` (evalkit's ``cache_dir``).
        output_dir: run folder holding the durable log ``judgments/<log_name>.jsonl`` (None: no log).
        log_name: usually the task name.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        cache_dir: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        log_name: str = "judge",
    ) -> None:
        if _is_none_judge(config):
            raise UsageError(
                "no LLM judge configured: pass judge=gpt-4 (or judge=local judge.base_url=<url>)"
            )
        cfg = _plain(dict(config))
        self.config: dict[str, Any] = cfg
        self.name = str(cfg.get("name"))
        model = cfg.get("model")
        if not model or str(model) == "???":
            raise UsageError(
                f"judge {self.name}: no model name; set judge.model=<model served at judge.base_url>"
            )
        base_url = cfg.get("base_url")
        if not base_url or str(base_url) == "???" or not str(base_url).startswith(("http://", "https://")):
            raise UsageError(
                f"judge {self.name}: judge.base_url must be an http(s) URL of an OpenAI-compatible endpoint "
                f"(e.g. http://127.0.0.1:8000/v1), got {base_url!r}"
            )
        if cfg.get("api_key"):
            raise UsageError(
                "put the judge's API key in an environment variable and name it with judge.api_key_env; "
                "a key in the config would be written to results"
            )
        if float(cfg.get("temperature") or 0.0) != 0.0:
            raise UsageError(f"judge {self.name}: judge.temperature must be 0 (deterministic judging)")
        self.model = str(model)
        self.base_url = str(base_url).rstrip("/")
        self.max_tokens = int(cfg.get("max_tokens") or 512)
        self.price_in = _price(cfg.get("price_per_1k_input"))
        self.price_out = _price(cfg.get("price_per_1k_output"))
        self.max_cost = None if cfg.get("max_cost") in (None, "") else float(cfg["max_cost"])
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise UsageError(
                f"judge.max_cost={self.max_cost:g} needs prices to estimate cost: set "
                "judge.price_per_1k_input and judge.price_per_1k_output"
            )
        env = cfg.get("api_key_env")
        key = api_key_from_env(
            env,
            lambda name: (
                f"judge {self.name}: environment variable {name} is not set: export {name}=<API key> "
                "(or set judge.api_key_env=null for a local server without authentication)"
            ),
        )
        kwargs: dict[str, Any] = {
            "api_key": key,
            "api_key_env": str(env) if env else None,
            **client_tuning(cfg),
        }
        try:
            self.client = ChatClient(
                self.model, self.base_url, extra_body=cfg.get("extra_body") or {}, **kwargs
            )
        except UsageError as exc:
            raise UsageError(f"judge {self.name}: {str(exc).replace('model.', 'judge.')}") from None
        self.params: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.max_tokens}
        if cfg.get("seed") is not None:
            self.params["seed"] = int(cfg["seed"])
        if cfg.get("stop"):
            self.params["stop"] = list(cfg["stop"])
        self.use_cache = bool(cfg.get("cache", True))
        self.cache: Any = None
        if self.use_cache:
            from evalkit.runner.cache import ResponseCache

            root = Path(os.path.expanduser(str(cache_dir or "~/.cache/evalkit")))
            self.cache = ResponseCache(root / "judgments.sqlite")
        self.log_path = (
            Path(output_dir) / "judgments" / f"{_safe(log_name)}.jsonl" if output_dir is not None else None
        )
        self._log: dict[str, dict[str, Any]] | None = None
        self._log_lock = threading.Lock()
        self.usage = JudgeUsage()

    @classmethod
    def from_run_config(cls, cfg: Mapping[str, Any], judge_cfg: Mapping[str, Any] | None, output_dir: Path,
                        log_name: str) -> LLMJudge:  # fmt: skip
        """Build from a run's resolved config (``cache_dir``) and the task's resolved ``judge`` block."""
        return cls(judge_cfg or {}, cache_dir=cfg.get("cache_dir"), output_dir=output_dir, log_name=log_name)

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        """What determines the judge's answers: endpoint (no credentials), model, decoding. Never the key."""
        out: dict[str, Any] = {"backend": "openai", "base_url": public_url(self.base_url)}
        for k in _IDENTITY_KEYS:
            out[k] = self.params.get(k, self.config.get(k)) if k != "model" else self.model
        out["temperature"] = 0.0
        out["max_tokens"] = self.max_tokens
        return out

    def identity_hash(self) -> str:
        """sha256 of :meth:`identity`."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """The judge block recorded in results (no secrets): preset, model, endpoint, prices, cap."""
        return {
            "name": self.name,
            "model": self.model,
            "base_url": public_url(self.base_url),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            "price_per_1k_input": self.price_in,
            "price_per_1k_output": self.price_out,
            "max_cost": self.max_cost,
            "identity": self.identity_hash(),
        }

    def key(self, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None) -> str:
        """The content address of one judge request."""
        p = {**self.params, **dict(params or {})}
        fp = request_fingerprint(messages, p)
        return hashlib.sha256(f"{self.identity_hash()}:{fp}".encode()).hexdigest()

    # ------------------------------------------------------------------ health
    def health_check(self) -> None:
        """One tiny request proving endpoint, key and model work; raises :class:`JudgeError` otherwise."""
        try:
            self.client.health_check()
        except ChatError as exc:
            msg = str(exc).replace("model.base_url", "judge.base_url").replace("model.name", "judge.model")
            msg = msg.replace("model.api_key_env", "judge.api_key_env")
            raise JudgeError(
                f"LLM judge {self.name!r} ({self.model} at {self.client.display_url}) is unusable: {msg}"
            ) from None

    # ------------------------------------------------------------------ cost
    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """Estimated cost of a usage (None when prices are not configured)."""
        if self.price_in is None or self.price_out is None:
            return None
        return (input_tokens or 0) / 1000.0 * self.price_in + (output_tokens or 0) / 1000.0 * self.price_out

    def worst_case_cost(self, messages: Sequence[Mapping[str, Any]]) -> float:
        """An upper estimate of one request's cost (used by ``max_cost``)."""
        return self.cost(estimate_input_tokens(messages), self.max_tokens) or 0.0

    def spent(self) -> float:
        """Cost of every judgment paid for in this output directory (durable log, source ``api``)."""
        total = 0.0
        for entry in self._load_log().values():
            if entry.get("source") == "api":
                total += self.cost(entry.get("input_tokens"), entry.get("output_tokens")) or 0.0
        return total

    # ------------------------------------------------------------------ durable log
    def _load_log(self) -> dict[str, dict[str, Any]]:
        with self._log_lock:
            if self._log is None:
                self._log = _read_log(self.log_path) if self.log_path is not None else {}
            return self._log

    def _append_log(self, entries: Sequence[dict[str, Any]]) -> None:
        if not entries:
            return
        log = self._load_log()
        with self._log_lock:
            for e in entries:
                log[e["key"]] = e
            if self.log_path is None:
                return
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

    # ------------------------------------------------------------------ judging
    def judge_many(
        self,
        conversations: Sequence[Sequence[Mapping[str, Any]]],
        labels: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[Judgment]:
        """Judge many conversations: durable log first, then the cache, then the API (concurrently).

        Args:
            conversations: OpenAI chat messages, one conversation per judgment.
            labels: a readable label per conversation (e.g. ``"<sample id>#r1"``), kept in the log.
            params: chat parameters over the judge's own (temperature stays 0).

        Returns:
            One :class:`Judgment` per conversation, in order; API failures after retries come back
            with ``error`` set (they are not cached, and retried on the next run).

        Raises:
            JudgeError: the endpoint rejected the key, model or path (401/403/404).
            JudgeCostLimitError: the next request could exceed ``max_cost``; finished judgments are saved.
        """
        n = len(conversations)
        labels = list(labels) if labels is not None else [str(i) for i in range(n)]
        req_params = {**self.params, **dict(params or {}), "temperature": 0.0}
        keys = [self.key(c, req_params) for c in conversations]
        out: list[Judgment | None] = [None] * n
        log = self._load_log()
        for i, k in enumerate(keys):
            if k in log:
                e = log[k]
                out[i] = Judgment(k, e["text"], e.get("input_tokens"), e.get("output_tokens"), "log")
                self.usage.from_log += 1
        missing = [i for i in range(n) if out[i] is None]
        if self.cache is not None and missing:
            hits = self.cache.get_many({keys[i] for i in missing})
            new_entries = []
            for i in missing:
                r = hits.get(keys[i])
                if r is not None and out[i] is None:
                    out[i] = Judgment(keys[i], r.text, r.input_tokens, r.output_tokens, "cache")
                    self.usage.from_cache += 1
                    new_entries.append(self._entry(out[i], labels[i]))  # type: ignore[arg-type]
            self._append_log(new_entries)
        todo: list[int] = []
        seen: dict[str, int] = {}
        dups: dict[int, int] = {}
        for i in range(n):
            if out[i] is None:
                if keys[i] in seen:
                    dups[i] = seen[keys[i]]
                else:
                    seen[keys[i]] = i
                    todo.append(i)
        pos = 0
        while pos < len(todo):
            chunk = todo[pos : pos + self.client.concurrency]
            if self.max_cost is not None:
                budget = self.max_cost - self.spent()
                fits: list[int] = []
                for i in chunk:
                    need = self.worst_case_cost(conversations[i])
                    if need > budget:
                        break
                    budget -= need
                    fits.append(i)
                if not fits:
                    left = len(todo) - pos
                    raise JudgeCostLimitError(
                        f"judge.max_cost={self.max_cost:g} reached (spent ≈ {self.spent():.4f} in this "
                        f"output directory; {left} judgment(s) left, the next one could cost up to "
                        f"{self.worst_case_cost(conversations[chunk[0]]):.4f}); finished judgments are saved; "
                        "raise judge.max_cost and rerun to continue"
                    )
                chunk = fits
            self._send(chunk, conversations, keys, labels, req_params, out)
            pos += len(chunk)
        for i, j in dups.items():
            src = out[j]
            assert src is not None
            out[i] = Judgment(src.key, src.text, src.input_tokens, src.output_tokens, src.source, src.error)
        return [j for j in out if j is not None]

    def _send(self, chunk: Sequence[int], conversations: Sequence[Sequence[Mapping[str, Any]]],
              keys: Sequence[str], labels: Sequence[str], params: Mapping[str, Any],
              out: list[Judgment | None]) -> None:  # fmt: skip
        from evalkit.types import Response

        try:
            results = self.client.complete_many([list(conversations[i]) for i in chunk], dict(params))
        except ChatError as exc:  # 401/403/404: every further request would fail too
            raise JudgeError(
                f"LLM judge {self.name!r} ({self.model} at {self.client.display_url}) failed: {exc}"
            ) from None
        entries, cached = [], []
        for i, res in zip(chunk, results, strict=True):
            if res.ok:
                # a server that reports no usage: count the (high) estimate, so max_cost still holds
                tin = res.prompt_tokens
                if tin is None:
                    tin = estimate_input_tokens(conversations[i])
                tout = res.completion_tokens
                if tout is None:
                    tout = math.ceil(len(res.text.encode("utf-8")) / 3)
                j = Judgment(keys[i], res.text, tin, tout, "api")
                self.usage.api_requests += 1
                self.usage.api_input_tokens += tin
                self.usage.api_output_tokens += tout
                self.usage.api_cost += self.cost(tin, tout) or 0.0
                entries.append(self._entry(j, labels[i]))
                cached.append((keys[i], Response(text=res.text, input_tokens=tin, output_tokens=tout)))
            else:
                j = Judgment(keys[i], "", source="error", error=res.error)
                self.usage.failed_requests += 1
            out[i] = j
        self._append_log(entries)
        if self.cache is not None:
            self.cache.put_many(cached)

    def _entry(self, j: Judgment, label: str) -> dict[str, Any]:
        return {
            "key": j.key,
            "label": label,
            "text": j.text,
            "input_tokens": j.input_tokens,
            "output_tokens": j.output_tokens,
            "source": j.source,
            "judge": self.model,
            "time": time.time(),
        }

    def close(self) -> None:
        """Close the HTTP client and the cache."""
        self.client.close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None


def _price(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    """The durable judgment log; a torn last line (crash mid-write) is cut off and redone."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    out: dict[str, dict[str, Any]] = {}
    pos = good = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl < 0:
            break
        try:
            line = raw[pos:nl]
            if line.strip():
                e = json.loads(line)
                out[str(e["key"])] = e
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError, TypeError):
            break
        pos = good = nl + 1
    if good < len(raw):
        with open(path, "r+b") as f:
            f.truncate(good)
    return out
