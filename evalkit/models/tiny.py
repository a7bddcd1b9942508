"""Build a seeded, random-weight tiny Qwen2-VL locally (no hub access needed).

The model is a real ``Qwen2VLForConditionalGeneration`` with a real ``Qwen2VLProcessor`` (image
processor, video processor, chat template) and a byte-level BPE tokenizer trained here on a small
built-in corpus, saved with ``save_pretrained``. It exercises exactly the code path of the real
Qwen2-VL checkpoints, so the end-to-end tests and the bundled default (`model=tiny`) run the same
code as `model=qwen2-vl-7b`. Its answers are meaningless but deterministic.

Built once per (size, seed) into ``<cache_dir>/models/`` and reused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

#: The Qwen2-VL conversation format written as a Jinja template: a default system prompt, image
#: and video placeholders wrapped in vision start/end tokens, ``<|im_start|>``/``<|im_end|>`` turns.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

_WORDS = (
    "the of and to in is was for on that with as by at from this are be or an it which answer question "
    "using single word phrase what who when where how many much date total amount name company address "
    "invoice report page table figure number year month day percent value price cost tax sum items "
    "document letter memo form phone fax email signature director manager president research tobacco "
    "sales market brand product cigarette study data results analysis summary program project budget "
    "describe image english caption provide sentence bounding box object video frame option best only "
    "give letter choice yes no left right top bottom center person people car dog cat tree house sky "
    "red blue green white black yellow large small two three four five six seven eight nine ten zero "
    "one hundred thousand million january february march april may june july august september october "
    "november december monday inc corp ltd co dept room street avenue road city state zip"
).split()


@dataclass(frozen=True)
class TinySpec:
    """Size of the tiny model. Defaults: a few hundred thousand parameters, CPU-fast."""

    seed: int = 0
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_embed_dim: int = 32
    vision_num_heads: int = 2
    initializer_range: float = 0.5
    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 64 * 28 * 28
    #: optimisation steps of a short, seeded, single-threaded training on synthetic DocVQA
    #: (seeds disjoint from the bundled mini set) so the model learns answer formats and earns
    #: partial ANLS; 0 keeps pure random weights (the test fixture).
    train_steps: int = 0
    train_rows: int = 320
    train_lr: float = 3e-3

    def key(self) -> str:
        """A short stable name for this spec (used as the cache folder name)."""
        import hashlib

        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]
        return f"tiny-qwen2-vl-{digest}"


#: the spec behind ``model=tiny`` (``evalkit://tiny``): trained briefly, so it answers in the right
#: formats and earns partial ANLS on the mini set — enough for a meaningful demo and CI gate.
TINY_PRESET = TinySpec(train_steps=300, initializer_range=0.02)


def _corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.5:
            words.append(str(rng.randint(0, 99999)))
        if rng.random() < 0.3:
            words.append(f"${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
        line = " ".join(words)
        lines.append(line.capitalize() if rng.random() < 0.5 else line)
    lines.append("0123456789 ()[]{},.:;!?-+/*%$#@&'\"=<>_ ß é ü ñ 中文 العربية русский")
    return lines


def build_tokenizer(spec: TinySpec):
    """Train a byte-level BPE tokenizer with the Qwen2-VL special tokens; returns a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed=spec.seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = QWEN2_VL_CHAT_TEMPLATE
    return fast


def build_tiny_qwen2_vl(path: str | os.PathLike[str], spec: TinySpec | None = None) -> Path:
    """Build the tiny model + processor and ``save_pretrained`` them into ``path``. Returns the path."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    spec = spec or TinySpec()
    tokenizer = build_tokenizer(spec)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.hidden_size // spec.num_attention_heads
    half = head_dim // 2
    mrope = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size,
            "num_hidden_layers": spec.num_hidden_layers,
            "num_attention_heads": spec.num_attention_heads,
            "num_key_value_heads": spec.num_key_value_heads,
            "max_position_embeddings": 4096,
            "initializer_range": spec.initializer_range,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": spec.vision_depth,
            "embed_dim": spec.vision_embed_dim,
            "hidden_size": spec.hidden_size,
            "num_heads": spec.vision_num_heads,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "initializer_range": spec.initializer_range,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(spec.seed)
    model = Qwen2VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.do_sample = False

    size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )
    if spec.train_steps > 0:
        train_on_synthetic_docvqa(model, processor, spec)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "evalkit_tiny.json").write_text(json.dumps(asdict(spec), indent=2))
    return out


TRAIN_PROMPT = "{question}\nAnswer the question using a single word or phrase."


def train_on_synthetic_docvqa(model, processor, spec: TinySpec) -> None:
    """A few hundred seeded AdamW steps on synthetic DocVQA (answer tokens only in the loss).

    Single-threaded and seeded, so the same spec gives the same weights on any machine of the same
    kind; inputs are encoded once up front. Uses document seeds 1000+ (the mini set uses 7).
    """
    import random

    import torch

    from evalkit.media.image import load_image
    from evalkit.testing.docvqa import make_docvqa_rows

    rows = make_docvqa_rows(spec.train_rows, seed=1000 + spec.seed)
    tok = processor.tokenizer
    examples = []
    for image, question, answers in zip(rows["image"], rows["question"], rows["answers"], strict=True):
        msgs = [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "text", "text": TRAIN_PROMPT.format(question=question)},
                ],
            }
        ]
        prompt = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        enc = processor(
            text=[prompt + answers[0] + "<|im_end|>"], images=[load_image(image)], return_tensors="pt"
        )
        n_answer = len(tok(answers[0] + "<|im_end|>", add_special_tokens=False)["input_ids"])
        types = enc.get("mm_token_type_ids")
        types = types[0] if types is not None else torch.zeros_like(enc["input_ids"][0])
        examples.append((enc["input_ids"][0], enc["pixel_values"], enc["image_grid_thw"], n_answer, types))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(spec.seed)
        rng = random.Random(spec.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.train_lr, weight_decay=0.0)
        model.train()
        pad = tok.pad_token_id
        for _ in _build_progress(spec.train_steps):
            batch = rng.sample(examples, 8)
            width = max(len(e[0]) for e in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            token_types = torch.zeros((len(batch), width), dtype=torch.long)
            for j, (seq, _, _, n_answer, types) in enumerate(batch):
                ids[j, : len(seq)] = seq
                token_types[j, : len(seq)] = types
                mask[j, : len(seq)] = 1
                labels[j, len(seq) - n_answer : len(seq)] = seq[len(seq) - n_answer :]
            out = model(
                input_ids=ids,
                attention_mask=mask,
                pixel_values=torch.cat([e[1] for e in batch]),
                image_grid_thw=torch.cat([e[2] for e in batch]),
                mm_token_type_ids=token_types,
                labels=labels,
            )
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
    finally:
        torch.set_num_threads(threads)


def _build_progress(steps: int):  # noqa: ANN202 - a tqdm iterator
    """A progress bar (stderr) over the training steps of the first-run build."""
    from tqdm import tqdm

    return tqdm(range(steps), desc="building tiny model", unit="step", leave=False, dynamic_ncols=True)


def tiny_model_path(cache_dir: str | os.PathLike[str], spec: TinySpec | None = None) -> Path:
    """The folder the tiny model for ``spec`` is (or will be) built in: under
    ``$EVALKIT_MODEL_CACHE`` when set, else ``<cache_dir>/models``."""
    spec = spec or TinySpec()
    # built models may live apart from the response cache ($EVALKIT_MODEL_CACHE), e.g. shared by
    # test runs that each isolate their response cache
    root = Path(os.path.expanduser(os.environ.get("EVALKIT_MODEL_CACHE") or str(Path(cache_dir) / "models")))
    return root / spec.key()


def tiny_model_built(cache_dir: str | os.PathLike[str], spec: TinySpec | None = None) -> bool:
    """True when the tiny model for ``spec`` is built (using it costs no build)."""
    return (tiny_model_path(cache_dir, spec) / "evalkit_tiny.json").exists()


def ensure_tiny_model(cache_dir: str | os.PathLike[str], spec: TinySpec | None = None) -> Path:
    """Return the folder of the tiny model for ``spec``, building it atomically on first use
    (in :func:`tiny_model_path`)."""
    spec = spec or TinySpec()
    target = tiny_model_path(cache_dir, spec)
    root = target.parent
    if (target / "evalkit_tiny.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    # one builder at a time: processes starting together (test workers, ranks) wait for the first
    # one's build instead of each training its own copy
    with FileLock(str(root / f".{spec.key()}.lock")):
        if (target / "evalkit_tiny.json").exists():
            return target
        for stale in root.glob(".build-*"):  # left by a build that was stopped (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        return _build_into(root, target, spec)


def _build_into(root: Path, target: Path, spec: TinySpec) -> Path:
    """Build the tiny model in a temporary folder under ``root`` and rename it to ``target``."""
    if spec.train_steps > 0:  # the first run would otherwise sit silent for a minute or two
        print(
            f"evalkit: building the tiny test model in {target} (first run only: "
            f"{spec.train_steps} training steps on synthetic pages, about 1-2 minutes)",
            file=sys.stderr,
            flush=True,
        )
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        build_tiny_qwen2_vl(tmp, spec)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "evalkit_tiny.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
