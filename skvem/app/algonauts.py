"""Fit LLM-VEM on Algonauts 2023 subjects and write the challenge submission.

One subject is one call of :func:`fit_subject`, a pure function of the job's
settings, so the subjects can run on any joblib backend (``n_jobs``; dask or
ray through ``joblib.parallel_config``). Each finished subject leaves a
done-marker written after all its outputs; a rerun with the same settings
skips those subjects and resumes at the first unfinished one.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from skvem._utils.files import atomic_path, write_json_atomic, write_text_atomic
from skvem.app._common import CommandError

__all__ = ["AlgonautsJob", "build_llm_vem", "fit_subject", "resolve_subjects"]

# Settings that do not change what a subject's outputs are: a rerun that only
# changes these resumes instead of refitting.
_RUN_ONLY = ("subjects", "n_jobs", "device", "verbose", "figures")


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


def resolve_subjects(root, subjects) -> tuple[int, ...]:
    """The subject numbers to fit: ``"all"`` (every ``subjXX`` folder in ``root``) or a list.

    Every subject's folder must exist, so that a typo fails before any fitting.
    """
    root = os.fspath(root)
    if isinstance(subjects, str) and subjects.strip().lower() == "all":
        found = tuple(s for s in range(1, 9) if os.path.isdir(os.path.join(root, f"subj{s:02d}")))
        if not found:
            raise FileNotFoundError(
                f"--subjects all: no subject folder (subj01 ... subj08) in --root {root!r}"
            )
        return found
    if isinstance(subjects, (int, np.integer)):
        subjects = [subjects]
    numbers = []
    for s in subjects:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= 8:
            raise ValueError(f"--subjects must be 'all' or numbers between 1 and 8; got {s!r}")
        if int(s) in numbers:
            raise ValueError(f"--subjects lists subject {s} twice")
        numbers.append(int(s))
    if not numbers:
        raise ValueError("--subjects must name at least one subject")
    for s in numbers:
        folder = os.path.join(root, f"subj{s:02d}")
        if not os.path.isdir(folder) and os.path.basename(os.path.normpath(root)) != f"subj{s:02d}":
            raise FileNotFoundError(
                f"subject {s}: its folder {folder!r} does not exist (check --root and --subjects)"
            )
    return tuple(numbers)


def validation_size(n, fraction) -> int:
    """Images held out of ``n`` for the report; ``ValueError`` when a part gets under 2."""
    n_val = max(1, int(round(fraction * n)))
    if n_val < 2 or n - n_val < 2:
        raise ValueError(
            f"validation_fraction={fraction} of {n} training images leaves {n_val} for "
            f"validation and {n - n_val} for training; both need at least 2"
        )
    return n_val


def _check_split_sizes(root, subjects, fraction):
    """Fail before any fitting when a subject's training split cannot be split as asked."""
    from skvem.datasets._algonauts import _image_list, _subject_dir

    for s in subjects:
        folder = os.path.join(_subject_dir(root, s), "training_split", "training_images")
        if os.path.isdir(folder):  # a missing folder is the loader's (named) error
            validation_size(len(_image_list(folder, "train")[0]), fraction)


@dataclass
class AlgonautsJob:
    """Hold out part of each subject's training split, score it, then predict the test split.

    With ``refit=True`` (default) the model that predicts the test images is
    fitted again on the whole training split after the validation report.
    The validation scores use ``noise_ceiling`` when the data set has one;
    Algonauts' released ceiling was measured on the *test* images, so those
    scores are an approximation. ``subjects`` is ``"all"`` or a list of
    numbers; ``n_jobs`` subjects are fitted at once (joblib).
    """

    root: str
    subjects: object = "all"
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
    n_jobs: int = 1
    verbose: bool = True
    figures: bool = True
    log: object = field(default=None, repr=False, compare=False)

    def model_settings(self) -> dict:
        """The settings a subject's outputs depend on (what a done-marker records)."""
        settings = {k: v for k, v in asdict(self).items() if k not in (*_RUN_ONLY, "log")}
        settings["root"] = os.path.abspath(os.fspath(self.root))
        return settings

    def check(self) -> tuple[int, ...]:
        """Check the settings and the subject folders; return the subject numbers."""
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must lie in (0, 1), got {self.validation_fraction}"
            )
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0:
            raise ValueError(f"n_jobs must be a non-zero integer (-1: all cores); got {self.n_jobs!r}")
        subjects = resolve_subjects(self.root, self.subjects)
        _check_split_sizes(self.root, subjects, self.validation_fraction)
        return subjects

    def run(self, out) -> str:
        """Fit every unfinished subject, then write the leaderboard and the zip; return a table."""
        from joblib import Parallel, delayed

        from skvem._utils.progress import progress
        from skvem.app import algonauts_report as report_lib

        subjects = self.check()
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        settings = self.model_settings()
        todo = [s for s in subjects if finished_report(out, s, settings) is None]
        self._log(f"{len(subjects) - len(todo)} of {len(subjects)} subjects finished earlier; "
                  f"fitting {todo or 'none'}")
        figures = self.figures and _can_plot()
        # What workers get: plain settings, no callables.
        job = AlgonautsJob(**{**asdict(self), "log": None, "figures": figures})
        runs = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_fit_subject_or_explain)(job, s, out) for s in todo
        )
        for report in progress(runs, verbose=self.verbose, total=len(todo), desc="subjects",
                               unit="subject"):
            self._log(f"subject {report['subject']} done ({report['fit_seconds']:.0f} s)")
        reports = [finished_report(out, s, settings) for s in subjects]
        board = report_lib.leaderboard(reports)
        paths = {
            "leaderboard.json": write_json_atomic(os.path.join(out, "leaderboard.json"), board),
            "report.md": os.path.join(out, "report.md"),
            "zip": report_lib.write_submission_zip(out, subjects),
        }
        if figures:
            rois = report_lib.write_rois_figure(reports, os.path.join(out, "rois.png"))
            if rois:
                paths["rois.png"] = rois
        write_text_atomic(paths["report.md"], report_lib.leaderboard_markdown(board, reports))
        tables = [report_lib.format_report(r) for r in reports]
        return "\n\n".join([*tables, report_lib.format_leaderboard(board),
                             "Written: " + ", ".join(paths.values())])

    def _log(self, message):
        if self.log is not None:
            self.log(message)


def _can_plot() -> bool:
    try:
        import matplotlib  # noqa: F401
        import nilearn  # noqa: F401
    except ImportError:
        warnings.warn("no figures: install the plotting extra (pip install 'skvem[plotting]')",
                      stacklevel=3)
        return False
    return True


def _marker_path(out, subject):
    return os.path.join(out, f"subj{subject:02d}_done.json")


def finished_report(out, subject, settings):
    """The report of a subject finished with these ``settings``, or ``None``."""
    try:
        with open(_marker_path(out, subject), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if marker.get("settings") != settings:
        return None
    if not all(os.path.isfile(os.path.join(out, name)) for name in marker.get("files", [])):
        return None
    return marker["report"]


def _fit_subject_or_explain(job, subject, out):
    try:
        return fit_subject(job, subject, out)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        # One line naming the subject, the same from every joblib backend.
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise CommandError(
            f"subject {subject} failed ({type(exc).__name__}: {message}); finished subjects are "
            "kept: run the same command again to resume"
        ) from exc


def fit_subject(job: AlgonautsJob, subject: int, out) -> dict:
    """Fit, score and write one subject; its done-marker is written last.

    Writes ``out/subjXX/{lh,rh}_pred_test.npy``, ``subjXX_report.json``,
    ``subjXX_validation.npz`` (per-vertex scores) and the figures
    ``subjXX_rois.png`` / ``subjXX_surface.png``, then ``subjXX_done.json``.
    Returns the subject's report.
    """
    from sklearn.base import clone

    from skvem.app import algonauts_report as report_lib
    from skvem.datasets import load_algonauts2023, write_algonauts_submission

    out = os.fspath(out)
    data = load_algonauts2023(job.root, subject)
    n = len(data.images)
    order = np.random.default_rng(job.seed).permutation(n)
    n_val = validation_size(n, job.validation_fraction)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    model = build_llm_vem(
        backbone=job.backbone, pretrained=job.pretrained, captioner=job.captioner,
        prompt=job.prompt, max_new_tokens=job.max_new_tokens, text_model=job.text_model,
        text_pretrained=job.text_pretrained, alignment_weight=job.alignment_weight,
        device=job.device, seed=job.seed, verbose=job.verbose, epochs=job.epochs,
        batch_size=job.batch_size, n_components=job.n_components,
    )
    t0 = time.perf_counter()
    model.fit(data.images[train], data.fmri[train])
    fit_seconds = time.perf_counter() - t0
    per_vertex, summary = report_lib.validation_scores(
        data, data.fmri[val], model.predict(data.images[val])
    )
    if job.refit:
        # The submission gets every training image, not the part scored above.
        model = clone(model).fit(data.images, data.fmri)
    paths = write_algonauts_submission(out, subject, model.predict(data.test_images),
                                       data.hemisphere_slices)
    name = f"subj{subject:02d}"
    files = [os.path.relpath(p, out) for p in paths]
    scores_path = os.path.join(out, f"{name}_validation.npz")
    with atomic_path(scores_path) as tmp:
        np.savez(tmp, **per_vertex)
    files.append(os.path.basename(scores_path))
    figures, notes = (report_lib.write_subject_figures(data, per_vertex, out, subject)
                      if job.figures else ([], []))
    files += [os.path.basename(p) for p in figures]
    report = {
        "subject": subject,
        "settings": job.model_settings(),
        "n_train": int(train.size),
        "n_validation": int(val.size),
        "fit_seconds": fit_seconds,
        **summary,
        "submission": [str(p) for p in paths],
        "figures": [str(p) for p in figures],
        "notes": notes,
    }
    files.append(os.path.basename(write_json_atomic(os.path.join(out, f"{name}_report.json"),
                                                     report)))
    # Last: only a subject whose every output is on disk counts as finished.
    write_json_atomic(_marker_path(out, subject),
                      {"settings": job.model_settings(), "files": files, "report": report})
    return report
