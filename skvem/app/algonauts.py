"""Fit LLM-VEM on one Algonauts 2023 subject and write its challenge submission."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["AlgonautsJob", "build_llm_vem"]


def build_llm_vem(
    *,
    backbone="open_clip:EVA02-B-16",
    pretrained="auto",
    captioner=None,
    prompt=None,
    max_new_tokens=None,
    text_model="ViT-L-14",
    text_pretrained="openai",
    alignment_weight=0.1,
    device="auto",
    seed=0,
    verbose=True,
    **featurizer_options,
):
    """The LLM-VEM pipeline: captions -> CLIP text targets -> aligned features -> ridge.

    ``alignment_weight=0`` builds the same network trained without language
    (and no text model is ever loaded). ``featurizer_options`` with a value
    of ``None`` keep :class:`~skvem.vision.featurizers.AlignedImageFeaturizer`'s
    defaults.
    """
    from sklearn.pipeline import make_pipeline

    from skvem.language.captioning import CaptionTransformer
    from skvem.vision.featurizers import AlignedImageFeaturizer
    from skvem.encoding.ridge import VoxelRidgeCV
    from skvem.language.text import CLIPTextEmbedder

    text = None
    if alignment_weight > 0:
        caption_options = {"device": device, "verbose": verbose}
        if captioner is not None:
            caption_options["model"] = captioner
        if prompt is not None:
            caption_options["prompt"] = prompt
        if max_new_tokens is not None:
            caption_options["max_new_tokens"] = max_new_tokens
        text = make_pipeline(
            CaptionTransformer(**caption_options),
            CLIPTextEmbedder(model=text_model, pretrained=text_pretrained, device=device),
        )
    options = {k: v for k, v in featurizer_options.items() if v is not None}
    return make_pipeline(
        AlignedImageFeaturizer(
            backbone=backbone,
            pretrained=pretrained,
            text=text,
            alignment_weight=alignment_weight,
            device=device,
            random_state=seed,
            verbose=verbose,
            **options,
        ),
        VoxelRidgeCV(),
    )


@dataclass
class AlgonautsJob:
    """Hold out part of the training split, report it per ROI, then predict the test split.

    With ``refit=True`` (default) the model that predicts the test images is
    fitted again on the whole training split after the validation report.
    The validation scores use ``noise_ceiling`` when the data set has one;
    Algonauts' released ceiling was measured on the *test* images, so those
    scores are an approximation.
    """

    root: str
    subject: int
    backbone: str = "open_clip:EVA02-B-16"
    pretrained: str | None = "auto"
    captioner: str | None = None
    prompt: str | None = None
    max_new_tokens: int | None = None
    text_model: str = "ViT-L-14"
    text_pretrained: str = "openai"
    alignment_weight: float = 0.1
    epochs: int | None = None
    batch_size: int | None = None
    n_components: int | None = None
    validation_fraction: float = 0.1
    refit: bool = True
    device: str = "auto"
    seed: int = 0
    verbose: bool = True

    def run(self, out) -> str:
        """Fit, score, write ``subjXX/{lh,rh}_pred_test.npy`` and ``report.json``; return a table."""
        from sklearn.base import clone

        from skvem.datasets import load_algonauts2023, write_algonauts_submission
        from skvem.metrics import algonauts_score_voxels, pearson_r

        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must lie in (0, 1), got {self.validation_fraction}"
            )
        data = load_algonauts2023(self.root, self.subject)
        n = len(data.images)
        order = np.random.default_rng(self.seed).permutation(n)
        n_val = max(1, int(round(self.validation_fraction * n)))
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        model = build_llm_vem(
            backbone=self.backbone, pretrained=self.pretrained, captioner=self.captioner,
            prompt=self.prompt, max_new_tokens=self.max_new_tokens, text_model=self.text_model, text_pretrained=self.text_pretrained,
            alignment_weight=self.alignment_weight, device=self.device, seed=self.seed,
            verbose=self.verbose, epochs=self.epochs, batch_size=self.batch_size,
            n_components=self.n_components,
        )
        t0 = time.perf_counter()
        model.fit(data.images[train], data.fmri[train])
        fit_seconds = time.perf_counter() - t0
        pred = model.predict(data.images[val])
        r = pearson_r(data.fmri[val], pred)
        nc = data.get("noise_ceiling")
        scores = algonauts_score_voxels(data.fmri[val], pred, nc) if nc is not None else None
        rows = []
        rois = {"all": np.arange(data.fmri.shape[1]), **dict(data.rois)}
        for name, idx in rois.items():
            idx = np.asarray(idx)
            if idx.size == 0:
                continue
            row = {"roi": name, "n_voxels": int(idx.size), "mean_r": float(np.mean(r[idx]))}
            if scores is not None:
                row["algonauts_score"] = float(np.nanmean(scores[idx]))
            rows.append(row)
        if self.refit:
            # The submission gets every training image, not the 90% scored above.
            model = clone(model).fit(data.images, data.fmri)
        test_pred = model.predict(data.test_images)
        paths = write_algonauts_submission(out, self.subject, test_pred, data.hemisphere_slices)
        report = {
            "settings": asdict(self),
            "n_train": int(train.size),
            "n_validation": int(val.size),
            "fit_seconds": fit_seconds,
            "validation": rows,
            "submission": [str(p) for p in paths],
        }
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, f"subj{self.subject:02d}_report.json"), "w") as f:
            json.dump(report, f, indent=2)
        return format_report(report)


def format_report(report: dict) -> str:
    """The validation table of an Algonauts run, one ROI a line."""
    has_score = any("algonauts_score" in row for row in report["validation"])
    lines = [
        f"Validation on {report['n_validation']} held-out training images "
        f"(trained on {report['n_train']}, {report['fit_seconds']:.0f} s):",
        f"{'ROI':<16}{'voxels':>8}{'mean r':>9}" + (f"{'score (%)':>11}" if has_score else ""),
    ]
    for row in report["validation"]:
        line = f"{row['roi']:<16}{row['n_voxels']:>8}{row['mean_r']:>9.3f}"
        if has_score:
            line += f"{row.get('algonauts_score', float('nan')):>11.1f}"
        lines.append(line)
    lines.append("Submission: " + ", ".join(report["submission"]))
    return "\n".join(lines)
