"""A scripted backend for tests and dry runs (``backend: fake``).

It answers from a rule, never from weights: ``mode: echo`` returns the request text, ``mode:
constant`` returns ``answer``, ``mode: table`` looks the sample id up in ``answers`` (a dict, or a
JSON file path), ``mode: fail`` fails on the sample ids in ``fail_ids``. It counts loads and calls so
tests can assert that a cached rerun never loaded the model. ``delay_s`` sleeps that long per
``generate`` call (slower scripted runs for the crash tests; not part of the identity).
``input_scale`` reports each image as given to the model at that fraction of its size
(``input_image_sizes``, rounded), as a backend that resizes images does; part of the identity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.models.base import Model
from evalkit.types import INPUT_IMAGE_SIZES, Request, Response

#: process-wide counters (tests read them)
CALLS = {"load": 0, "generate": 0, "requests": 0}


class FakeModel(Model):
    """Deterministic scripted answers (see module docstring)."""

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.mode = str(self.config.get("mode", "constant"))
        self.preferred_batch_size = int(self.config.get("batch_size") or 1)
        answers = self.config.get("answers") or {}
        if isinstance(answers, str):
            answers = json.loads(Path(answers).read_text())
        self.answers: dict[str, str] = {str(k): str(v) for k, v in dict(answers).items()}
        self.fail_ids = {str(x) for x in (self.config.get("fail_ids") or [])}
        self.delay_s = float(self.config.get("delay_s") or 0.0)  # reliability (issue 9)
        scale = self.config.get("input_scale")
        self.input_scale = float(scale) if scale is not None else None

    def identity(self) -> dict[str, Any]:
        """The script is the identity."""
        return {
            "backend": "fake",
            "mode": self.mode,
            "answer": self.config.get("answer"),
            "answers": self.answers,
            **({"input_scale": self.input_scale} if self.input_scale is not None else {}),
        }  # fail_ids simulate transient backend failures: the same model, so not part of the identity

    def load(self) -> None:
        """Count the load (there is nothing to load)."""
        if not self.loaded:
            CALLS["load"] += 1
        self.loaded = True

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer by the configured rule."""
        CALLS["generate"] += 1
        CALLS["requests"] += len(requests)
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        out = []
        for r in requests:
            if r.sample_id in self.fail_ids:
                out.append(Response(text="", error="scripted failure"))
            elif self.mode == "echo":
                out.append(Response(text=r.text))
            elif self.mode == "table":
                out.append(Response(text=self.answers.get(r.sample_id, "")))
            else:
                out.append(Response(text=str(self.config.get("answer", ""))))
            if self.input_scale is not None and r.images and not out[-1].error:
                s = self.input_scale
                out[-1].extra[INPUT_IMAGE_SIZES] = [
                    [max(1, round(i.size[0] * s)), max(1, round(i.size[1] * s))] for i in r.images
                ]
        return out
