"""Tiny, randomly initialised language models for offline tests and benchmarks.

Every builder writes a model to a folder exactly as a user's real checkpoint
would be laid out, so tests load it back through the public loading path:

* :func:`make_tiny_open_clip` - an open_clip ``local-dir:`` folder
  (``open_clip_config.json`` + ``open_clip_model.safetensors``);
* :func:`make_tiny_sentence_model` - a sentence-transformers folder;
* :func:`make_tiny_blip` - an encoder-decoder captioner (BLIP) with its
  processor, as ``save_pretrained`` writes it;
* :func:`make_tiny_smolvlm` / :func:`make_tiny_llava` - chat VLMs with a chat
  template, loadable by ``AutoModelForImageTextToText``;
* :class:`LoggingCaptioner` - a deterministic callable captioner that logs
  every image it captions to a file (shared by processes and clones).

Random weights write gibberish made of the words in :data:`WORDS`; the
initialiser range is large so that captions depend on the image.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

WORDS = (
    "a an the cat dog red blue green big small on in of with near sitting standing tree "
    "house car sky grass water person man woman table chair window street field two three"
).split()
PROMPT_WORDS = "describe this image detail user assistant".split()
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% elif item['type'] == 'text' %} {{ item['text'] }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


# ---------------------------------------------------------------------------
# open_clip
# ---------------------------------------------------------------------------


def tiny_open_clip_config(context_length=16, embed_dim=16, width=32):
    """An open_clip ``model_cfg`` small enough to build in milliseconds."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "patch_size": 16,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": 49408,
            "width": width,
            "heads": 2,
            "layers": 1,
        },
    }


def make_tiny_open_clip(folder, *, seed=0, context_length=16, embed_dim=16, width=32, layers=1):
    """Write a random open_clip model as a ``local-dir:`` folder; return the folder."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_open_clip_config(context_length, embed_dim, width)
    cfg["text_cfg"]["layers"] = layers
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    with open(folder / "open_clip_config.json", "w") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": {}}, f)
    return folder


# ---------------------------------------------------------------------------
# sentence-transformers
# ---------------------------------------------------------------------------


def _bert_vocab(extra=()):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + list(extra) + WORDS + PROMPT_WORDS + [".", ",", ":", "!", "?"]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def make_tiny_sentence_model(folder, *, seed=0, max_seq_length=16, hidden=32):
    """Write a random BERT + mean pooling sentence-transformers model; return the folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    folder = Path(folder)
    hf_dir = folder / "_hf"
    vocab = _bert_vocab()
    tok = BertTokenizer(vocab=vocab)
    torch.manual_seed(seed)
    bert = BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=64,
        )
    )
    bert.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pool = Pooling(dim(), pooling_mode="mean")
    st = SentenceTransformer(modules=[word, pool], device="cpu")
    st.save(str(folder))
    return folder


# ---------------------------------------------------------------------------
# Captioners
# ---------------------------------------------------------------------------


def _image_like(seed, shape=(40, 48)):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=shape + (3,), dtype=np.uint8)


def make_images(n, *, seed=0, shapes=None):
    """``n`` random RGB uint8 images; ``shapes`` cycles through (H, W) sizes."""
    shapes = shapes or [(40, 48)]
    return [_image_like(seed * 1000 + i, tuple(shapes[i % len(shapes)])) for i in range(n)]


# One tiny transformer size for every tower (text or vision, any family).
_TINY_LAYERS = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                    initializer_range=0.5)
# A 32 px image seen as 4 x 4 patches of 8 px.
_TINY_VISION = dict(_TINY_LAYERS, image_size=32, patch_size=8)


def _save(folder, model, processor):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def make_tiny_blip(folder, *, seed=0):
    """Write a random BLIP captioner and its processor; return the folder."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    vocab = _bert_vocab(extra=["[DEC]"])
    tok = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    cfg = BlipConfig(
        text_config=dict(
            _TINY_LAYERS,
            vocab_size=len(vocab),
            max_position_embeddings=64,
            bos_token_id=vocab["[DEC]"],
            pad_token_id=0,
            sep_token_id=vocab["[SEP]"],
            eos_token_id=vocab["[SEP]"],
        ),
        vision_config=dict(_TINY_VISION),
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(cfg).eval()
    proc = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok
    )
    return _save(folder, model, proc)


def _llama_text_config(vocab, eos, **sizes):
    from transformers import LlamaConfig

    settings = dict(_TINY_LAYERS, num_key_value_heads=2, max_position_embeddings=512)
    settings.update(sizes)
    return LlamaConfig(vocab_size=len(vocab), pad_token_id=0, bos_token_id=vocab["[CLS]"],
                       eos_token_id=eos, **settings)


#: Sizes of ``make_tiny_smolvlm`` presets: the test model, and the
#: architecture of SmolVLM-256M-Instruct (random weights) for speed benchmarks.
SMOLVLM_PRESETS = {
    "tiny": dict(
        vision=dict(_TINY_VISION),
        text=dict(), scale_factor=2, image_seq_len=4, vocab_size=None,
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, splitting=True,
    ),
    "smolvlm-256m": dict(
        vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    image_size=512, patch_size=16),
        text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                  num_key_value_heads=3, max_position_embeddings=8192, initializer_range=0.02),
        scale_factor=4, image_seq_len=64, vocab_size=49280,
        size={"longest_edge": 512}, max_image_size={"longest_edge": 512}, splitting=False,
    ),
}


def make_tiny_smolvlm(folder, *, seed=0, preset="tiny"):
    """Write a random SmolVLM (Idefics3 family) chat VLM and processor; return the folder.

    ``preset="tiny"``: images are split into up to 2 x 2 tiles of 32 px plus a
    global view, so images of different aspect ratios get different numbers
    of image tokens and a batch needs (left) padding, as with the real model.
    ``preset="smolvlm-256m"``: the real model's architecture and vocabulary
    size (random weights, one 512 px view per image), for speed benchmarks.
    """
    import torch
    from transformers import (
        BertTokenizer,
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    sizes = SMOLVLM_PRESETS[preset]
    image_tokens = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
    rowcol = [f"<row_{r}_col_{c}>" for r in range(1, 5) for c in range(1, 5)]
    vocab = _bert_vocab(extra=image_tokens + rowcol)
    if sizes["vocab_size"]:
        # Filler words: the real vocabulary's size sets the cost of the LM head.
        vocab.update({f"w{i}": i for i in range(len(vocab), sizes["vocab_size"])})
    tok = BertTokenizer(vocab=vocab)
    tok.add_special_tokens({"additional_special_tokens": image_tokens + rowcol})
    cfg = SmolVLMConfig(
        vision_config=sizes["vision"],
        text_config=_llama_text_config(vocab, vocab["<end_of_utterance>"], **sizes["text"]),
        image_token_id=vocab["<image>"],
        scale_factor=sizes["scale_factor"],
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(cfg).eval()
    proc = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(
            size=sizes["size"], max_image_size=sizes["max_image_size"],
            do_image_splitting=sizes["splitting"],
        ),
        video_processor=SmolVLMVideoProcessor(size=sizes["size"], max_image_size=sizes["max_image_size"]),
        tokenizer=tok,
        image_seq_len=sizes["image_seq_len"],
        chat_template=CHAT_TEMPLATE,
    )
    return _save(folder, model, proc)


def make_tiny_llava(folder, *, seed=0):
    """Write a random LLaVA chat VLM and processor; return the folder."""
    import torch
    from transformers import (
        BertTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    vocab = _bert_vocab(extra=["<image>", "<end_of_utterance>"])
    tok = BertTokenizer(vocab=vocab)
    tok.add_special_tokens({"additional_special_tokens": ["<image>", "<end_of_utterance>"]})
    vision = CLIPVisionConfig(**_TINY_VISION, projection_dim=32)
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=_llama_text_config(vocab, vocab["<end_of_utterance>"]),
        image_token_id=vocab["<image>"],
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    proc = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return _save(folder, model, proc)


class LoggingCaptioner:
    """A deterministic callable captioner that logs what it captions.

    The caption of an image is a function of its pixels only. Every call
    appends one line per image (``pid fingerprint``) to ``log_path``, which
    survives the deep copies ``clone`` makes and is shared by processes.

    Parameters
    ----------
    log_path : str
    delay : float
        Seconds to sleep per call (to be killed mid-run).
    cache_key : str
        The identity skvem's cache uses for this captioner.
    """

    def __init__(self, log_path, delay=0.0, cache_key="tests.LoggingCaptioner/v1"):
        self.log_path = str(log_path)
        self.delay = delay
        self.cache_key = cache_key

    @staticmethod
    def caption_of(arr) -> str:
        arr = np.asarray(arr)
        return (
            f"mean {arr.mean():.4f} shape {arr.shape[0]}x{arr.shape[1]} corner {int(arr[0, 0, 0])}"
        )

    def __call__(self, images):
        from skvem.images import fingerprint_array

        if self.delay:
            time.sleep(self.delay)
        arrays = [np.asarray(im.convert("RGB")) for im in images]
        with open(self.log_path, "a") as f:
            for a in arrays:
                f.write(f"{os.getpid()} {fingerprint_array(a)}\n")
        return [self.caption_of(a) for a in arrays]

    def n_calls(self):
        """Number of images captioned so far (by every process)."""
        if not os.path.exists(self.log_path):
            return 0
        with open(self.log_path) as f:
            return sum(1 for line in f if line.strip())


def caption_features(captions):
    """Two cheap numbers per caption, for pipelines that must not import torch."""
    captions = np.asarray(captions, dtype=object).ravel()
    return np.array([[len(c), sum(map(ord, c)) % 97] for c in captions], dtype=float)
