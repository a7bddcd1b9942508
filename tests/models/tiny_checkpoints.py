"""Tiny random-weight checkpoints of other architectures, built offline with ``save_pretrained``.

* :func:`build_tiny_florence2`: an encoder-decoder image-text-to-text model
  (``Florence2ForConditionalGeneration``, ``is_encoder_decoder=True``) with its real processor
  (``Florence2Processor``: CLIP image processor + BART-style tokenizer) and, like the real
  Florence-2 checkpoints, no chat template.
* :func:`build_processor_needing_num2words`: a checkpoint folder whose processor class
  (``SmolVLMProcessor``) needs the optional ``num2words`` package.

The tokenizers are byte-level BPE models trained here on a small corpus; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<image>"]


def _bpe_tokenizer(vocab_size: int = 400):
    """A small byte-level BPE tokenizer with BART's special tokens plus ``<image>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evalkit.models.tiny import _corpus

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(800), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def build_tiny_florence2(path: Path, seed: int = 0, image_size: int = 64) -> Path:
    """A seeded random Florence-2-style encoder-decoder saved into ``path`` (no chat template)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    tokenizer = _bpe_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _SPECIALS}
    # DaViT downsamples by 4 * 2 * 2 * 2 = 32: (image_size / 32)^2 patch tokens + 1 pooled token
    n_image_tokens = (image_size // 32) ** 2 + 1
    config = Florence2Config(
        text_config={
            "model_type": "bart",
            "vocab_size": len(tokenizer),
            "d_model": 32,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 128,
            "pad_token_id": ids["<pad>"],
            "bos_token_id": ids["<s>"],
            "eos_token_id": ids["</s>"],
            "decoder_start_token_id": ids["</s>"],
            "forced_eos_token_id": ids["</s>"],
        },
        vision_config={
            "depths": [1, 1, 1, 1],
            "embed_dim": [8, 16, 16, 32],
            "num_heads": [1, 1, 1, 2],
            "num_groups": [1, 1, 1, 2],
            "window_size": 2,
            "projection_dim": 32,
            "drop_path_rate": 0.0,
        },
        image_token_id=ids["<image>"],
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        decoder_start_token_id=ids["</s>"],
    )
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(
        size={"height": image_size, "width": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=False,
    )
    image_processor.image_seq_length = n_image_tokens
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer)
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_processor_needing_num2words(path: Path, base: Path) -> Path:
    """A checkpoint folder (tokenizer and image processor from ``base``) whose
    ``processor_config.json`` names ``SmolVLMProcessor``, which refuses to load without the
    optional ``num2words`` package."""
    from transformers import AutoTokenizer, SmolVLMImageProcessor

    path = Path(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    SmolVLMImageProcessor().save_pretrained(path)
    (path / "processor_config.json").write_text(json.dumps({"processor_class": "SmolVLMProcessor"}))
    cfg = json.loads((Path(base) / "config.json").read_text())
    (path / "config.json").write_text(
        json.dumps({**cfg, "model_type": "smolvlm", "architectures": ["SmolVLMForConditionalGeneration"]})
    )
    return path
