"""The hf backend on checkpoints of other architectures (issue 13): an encoder-decoder
(Florence-2-style) model answers with its whole decoder output, a checkpoint without a chat template
gets one line (and ``model.chat_template=plain`` runs it), a processor needing an optional
package names its pip command, and ``truncated`` marks answers that hit ``max_new_tokens``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from evalkit.errors import MissingDependencyError, UsageError
from evalkit.models.hf import HFModel, plain_prompt
from evalkit.types import GenerationParams, ImagePart, Request, user_message
from tests.conftest import run_cli_here as run_cli
from tests.models.tiny_checkpoints import build_processor_needing_num2words, build_tiny_florence2


@pytest.fixture(scope="module")
def florence_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_florence2(tmp_path_factory.mktemp("tiny-florence2"))


def image(seed: int) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (40, 30), rng.randbytes(40 * 30 * 3))


def vqa_requests(n: int, max_new_tokens: int = 6) -> list[Request]:
    gen = GenerationParams(max_new_tokens=max_new_tokens)
    return [
        Request(f"s{i}", (user_message(ImagePart(image(i)), f"what is the total {i}?"),), gen, task="t")
        for i in range(n)
    ]


def hf(path: Path, **cfg) -> HFModel:
    return HFModel({"backend": "hf", "pretrained": str(path), "dtype": "float32", "device": "cpu", **cfg})


def reference_answers(path: Path, reqs: list[Request]) -> list[str]:
    """Straight transformers, one request at a time: the whole generated sequence decoded."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).eval()
    out = []
    for r in reqs:
        inputs = processor(text=[r.text], images=list(r.images), return_tensors="pt")
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=r.generation.max_new_tokens, do_sample=False)
        out.append(processor.batch_decode(ids, skip_special_tokens=True)[0].strip())
    return out


def test_florence2_without_template_fails_with_one_line(florence_dir: Path) -> None:
    m = hf(florence_dir)
    with pytest.raises(UsageError) as info:
        m.load()
    msg = str(info.value)
    assert "\n" not in msg and "has no chat template" in msg
    assert "model.chat_template=" in msg and "model.chat_template=plain" in msg
    assert m.model is None  # refused before loading any weights


def test_encoder_decoder_answers_are_the_whole_decoder_output(florence_dir: Path) -> None:
    reqs = vqa_requests(3)
    m = hf(florence_dir, chat_template="plain")
    got = m.generate(reqs)
    assert m.is_encoder_decoder
    assert [r.prompt for r in got] == [plain_prompt(r) for r in reqs] == [r.text for r in reqs]
    assert all(r.text for r in got), [r.text for r in got]  # the bug: every answer was ""
    assert all(r.output_tokens and r.output_tokens > 0 for r in got)
    assert [r.text for r in got] == reference_answers(florence_dir, reqs)
    # random weights never emit the end token within 6 tokens: every answer hit the limit
    assert [r.extra["truncated"] for r in got] == [r.output_tokens >= 6 for r in got]
    m.close()


def test_no_template_checkpoint_through_the_cli(florence_dir: Path, tmp_path: Path) -> None:
    common = ("run", "task=docvqa_mini", "model=hf", f"model.pretrained={florence_dir}", "model.device=cpu",
              "model.dtype=float32", "limit=2", "runner.cache=false", "runner.progress=false", "runner.thumbnails=0")  # fmt: skip
    proc = run_cli(*common, f"output_dir={tmp_path / 'a'}")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("evalkit: error: checkpoint") and "model.chat_template=plain" in lines[-1]
    assert "Traceback" not in proc.stderr
    proc = run_cli(*common, "model.chat_template=plain", f"output_dir={tmp_path / 'b'}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_decoder_only_truncated_flag(tiny_model_dir: Path) -> None:
    m = hf(tiny_model_dir)
    short = m.generate(vqa_requests(2, max_new_tokens=2))
    assert [r.output_tokens for r in short] == [2, 2]
    assert [r.extra["truncated"] for r in short] == [True, True]
    assert {r.extra["finish_reason"] for r in short} == {"length"}
    m.close()


def test_missing_optional_processor_package_names_the_pip_command(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    try:
        import num2words  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - the package is not among evalkit's dependencies
        pytest.skip("num2words is installed here")
    folder = build_processor_needing_num2words(tmp_path / "smolvlm-like", tiny_model_dir)
    m = hf(folder)
    with pytest.raises(MissingDependencyError) as info:
        m.load()
    assert "pip install num2words" in str(info.value) and "\n" not in str(info.value)
