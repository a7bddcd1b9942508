"""Images fitted to the pixel budget at request-build time give the model exactly the same input.

The reference for the fitted size is written here from the Qwen2-VL rule (sides rounded to the
28-pixel grid, scaled by sqrt(pixels / budget) with floor when too large and ceil when too small),
independently of transformers' ``smart_resize``; exactness is checked on the processor output.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from PIL import Image

from evalkit.models.image_fit import ProcessorImageFitter
from evalkit.types import GenerationParams, ImagePart, Message, Request, TextPart

#: (width, height): pages at real scan sizes, thin strips, tiny icons (upscaled), exact fits
SIZES = [
    (1700, 2200),
    (612, 792),
    (1239, 1754),
    (2200, 600),
    (33, 900),
    (900, 29),
    (20, 20),
    (56, 56),
    (224, 224),
    (28 * 8, 28 * 6),
    (301, 173),
]


def reference_fitted_size(width: int, height: int, factor: int, lo: int, hi: int) -> tuple[int, int]:
    """The Qwen2-VL resize rule, written from its description (not from transformers)."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > hi:
        beta = math.sqrt(height * width / hi)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < lo:
        beta = math.sqrt(lo / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return w, h


def noise(width: int, height: int, seed: int) -> Image.Image:
    """Random pixels: the hardest case for a resize to reproduce bit for bit."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mode="RGB")


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def fitter(processor):
    made = ProcessorImageFitter.for_processor(processor)
    assert made is not None, "the tiny Qwen2-VL processor must be recognised"
    return made


@pytest.mark.parametrize("size", SIZES)
def test_fitted_image_gives_identical_pixel_values(processor, fitter, size):
    import torch

    image = noise(*size, seed=size[0] * 7 + size[1])
    fitted = fitter.fit_image(image)
    ip = processor.image_processor
    factor = ip.patch_size * ip.merge_size
    assert fitted.size == reference_fitted_size(*size, factor, ip.size.shortest_edge, ip.size.longest_edge)
    a = ip(images=[image], return_tensors="pt")
    b = ip(images=[fitted], return_tensors="pt")
    assert torch.equal(a["image_grid_thw"], b["image_grid_thw"])
    assert torch.equal(a["pixel_values"], b["pixel_values"])
    assert fitter.active


def test_fitting_is_idempotent_and_shared_images_are_fitted_once(fitter):
    image = noise(1200, 1600, seed=1)
    fitted = fitter.fit_image(image)
    assert fitted is not image and fitted.size != image.size
    assert fitter.fit_image(fitted) is fitted  # already at its fitted size: untouched
    assert fitter.fit_image(image) is fitted  # the second request sharing the page reuses it


def test_an_image_the_processor_refuses_is_an_input_error_for_its_sample_only(processor, fitter):
    """A 1 x 3000 strip (aspect ratio over 200): the processor raises on it in every batch, so the
    fitter says so at build time, as the sample's input error, instead of failing its batch."""
    from evalkit.errors import InputError

    with pytest.raises(ValueError, match="aspect ratio"):  # what the processor itself does
        processor.image_processor(images=[Image.new("RGB", (1, 3000))], return_tensors="pt")
    with pytest.raises(InputError, match=r"image 1x3000 is refused by the model's processor: .*aspect ratio"):
        fitter.fit_image(Image.new("RGB", (1, 3000)))
    assert fitter.active  # the fitter stays on for the other images
    assert fitter.fit_image(Image.new("RGB", (20, 3000))).size != (20, 3000)  # 150:1 is accepted


def test_fit_request_replaces_only_images(fitter):
    page = noise(1500, 1100, seed=2)
    request = Request(
        sample_id="s1",
        messages=(Message("user", (ImagePart(page), TextPart("What is the date?"))),),
        generation=GenerationParams(max_new_tokens=8),
        task="docvqa",
    )
    fitted = fitter.fit_request(request)
    assert fitted.images[0].size == fitter.fit_image(page).size
    assert fitted.text == request.text and fitted.generation == request.generation
    assert fitted.fingerprint() != request.fingerprint()  # the digest is of the fitted pixels
    text_only = Request("s2", (Message("user", (TextPart("hi"),)),), GenerationParams())
    assert fitter.fit_request(text_only) is text_only


def test_fitter_switches_off_when_the_processor_output_differs(processor, caplog):
    """A processor whose resize is not what the model input uses: the one-time check catches it."""

    class Drifting:
        def __init__(self, real):
            self.real = real
            self.patch_size, self.merge_size = real.patch_size, real.merge_size
            self.size, self.resample, self.do_resize = real.size, real.resample, True

        def resize(self, images, size, resample, factor, **kw):
            return self.real.resize(images=images, size=size, resample=resample, factor=factor)

        def __call__(self, images, return_tensors="pt"):
            out = self.real(images=images, return_tensors=return_tensors)
            if images[0].size == (1700, 2200):  # only the original gives this output
                out["pixel_values"] = out["pixel_values"] + 1
            return out

    drifting = ProcessorImageFitter.for_processor(Drifting(processor.image_processor))
    assert drifting is not None
    page = noise(1700, 2200, seed=3)
    with caplog.at_level(logging.WARNING, logger="evalkit.models.image_fit"):
        assert drifting.fit_image(page) is page
    assert not drifting.active
    assert "not resized ahead" in caplog.text
    assert drifting.fit_image(noise(900, 900, seed=4)).size == (900, 900)  # stays off


def test_unrecognised_processors_are_left_alone(processor):
    class NoPatches:
        size = processor.image_processor.size
        do_resize = True

        def resize(self, images, size, factor):  # pragma: no cover - never called
            raise AssertionError

    assert ProcessorImageFitter.for_processor(NoPatches()) is None

    class ResizeOff:
        patch_size, merge_size, do_resize = 14, 2, False
        size = processor.image_processor.size

    assert ProcessorImageFitter.for_processor(ResizeOff()) is None


def test_hf_backend_answers_the_same_with_and_without_fitting(tiny_model_dir):
    """End to end through the transformers backend: same prompt tensors, same greedy answers."""
    import torch

    from evalkit.models.hf import HFModel

    config = {"backend": "hf", "pretrained": str(tiny_model_dir), "dtype": "float32", "device": "cpu"}
    fitted_model = HFModel({**config, "batch_size": 3})
    plain_model = HFModel({**config, "batch_size": 3, "fit_images": False})
    pages = [noise(1300, 1700, seed=5), noise(640, 480, seed=6), noise(30, 40, seed=7)]
    requests = [
        Request(
            f"s{i}",
            (Message("user", (ImagePart(p), TextPart("Read the title."))),),
            GenerationParams(max_new_tokens=6),
        )
        for i, p in enumerate(pages)
    ]
    fitted = [fitted_model.fit_request(r) for r in requests]
    assert [r.images[0].size for r in fitted] != [p.size for p in pages]
    assert [plain_model.fit_request(r) for r in requests] == requests  # model.fit_images=false
    a = fitted_model.prepare(fitted).inputs
    b = plain_model.prepare(requests).inputs
    assert set(a.keys()) == set(b.keys())
    for key in a:
        assert torch.equal(a[key], b[key]), key
    fitted_answers, plain_answers = fitted_model.generate(fitted), plain_model.generate(requests)
    assert [r.text for r in fitted_answers] == [r.text for r in plain_answers]
    # both report the size the model was given each page at (the frame of pixel answers)
    ip = fitted_model.processor.image_processor
    factor, lo, hi = ip.patch_size * ip.merge_size, ip.size.shortest_edge, ip.size.longest_edge
    expected = [[list(reference_fitted_size(*p.size, factor, lo, hi))] for p in pages]
    assert [r.extra["input_image_sizes"] for r in fitted_answers] == expected
    assert [r.extra["input_image_sizes"] for r in plain_answers] == expected


def test_vllm_backend_reports_the_size_its_processor_resizes_to(tiny_model_dir):
    """vLLM runs the checkpoint's processor with the budget in ``mm_processor_kwargs``: the sizes
    are computed from that rule, without the engine (vLLM is not needed here)."""
    from evalkit.models.vllm import VLLMModel

    lo, hi = 3136, 12544
    model = VLLMModel(
        {"backend": "vllm", "pretrained": str(tiny_model_dir), "min_pixels": lo, "max_pixels": hi}
    )
    pages = [noise(1300, 1700, seed=5), noise(30, 40, seed=7)]
    two = Request("s", (Message("user", (ImagePart(pages[0]), ImagePart(pages[1]), TextPart("?"))),),
                  GenerationParams())  # fmt: skip
    assert model.input_image_sizes(two) == [list(reference_fitted_size(*p.size, 28, lo, hi)) for p in pages]
    text_only = Request("t", (Message("user", (TextPart("?"),)),), GenerationParams())
    assert model.input_image_sizes(text_only) is None


def test_toggling_fit_images_is_the_same_evaluation_with_the_same_answers(tmp_path, docvqa_dir):
    """``model.fit_images`` is operational: a folder may be resumed with it flipped (no refusal);
    rebuilt and checked (``verify_resumed``), the records are redone — their fingerprints hash other
    pixels — and the answers are the same."""
    from evalkit.api import evaluate
    from tests.conftest import read_samples

    out = tmp_path / "run"
    base = [f"task.dataset.path={docvqa_dir}", "limit=4", "runner.cache=false", "runner.progress=false",
            f"output_dir={out}"]  # fmt: skip
    first = evaluate("docvqa", "tiny", base)
    before = read_samples(out / "samples" / "docvqa.jsonl")
    resumed = evaluate("docvqa", "tiny", [*base, "model.fit_images=false"])  # same code: trusted
    assert resumed["timing"]["n_resumed"] == 4
    again = evaluate("docvqa", "tiny", [*base, "model.fit_images=false", "runner.verify_resumed=true"])
    after = read_samples(out / "samples" / "docvqa.jsonl")
    assert again["timing"]["n_generated"] == 4 and again["timing"]["n_resumed"] == 0
    assert [r["prediction"] for r in after] == [r["prediction"] for r in before]
    assert [r["fingerprint"] for r in after] != [r["fingerprint"] for r in before]
    assert again["tasks"]["docvqa"]["metrics"] == first["tasks"]["docvqa"]["metrics"]
