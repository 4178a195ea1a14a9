"""What ``skvem algonauts`` reports: validation scores, the leaderboard, figures, the zip."""

from __future__ import annotations

import os
import warnings
import zipfile

import numpy as np

from skvem._utils.files import atomic_path

__all__ = [
    "validation_scores", "format_report", "leaderboard", "format_leaderboard",
    "leaderboard_markdown", "write_subject_figures", "write_rois_figure", "write_submission_zip",
    "SUBMISSION_ZIP",
]

# The name the challenge's development kit gives the submission folder.
SUBMISSION_ZIP = "algonauts_2023_challenge_submission.zip"
HEMISPHERES = ("lh", "rh")


def _summary(idx, r, score):
    row = {"n_voxels": int(idx.size), "mean_r": float(np.mean(r[idx]))}
    if score is not None:
        finite = idx[np.isfinite(score[idx])]
        row["n_scored"] = int(finite.size)
        row["algonauts_score"] = float(np.mean(score[finite])) if finite.size else None
    return row


def validation_scores(data, y_true, y_pred):
    """Per-vertex, per-ROI and per-hemisphere validation scores of one subject.

    Returns ``(per_vertex, summary)``: ``per_vertex`` holds ``r`` and, when
    ``data`` has a noise ceiling, ``algonauts_score`` (percent of the ceiling,
    NaN where the ceiling is 0); ``summary`` the means over every ROI
    (``validation``, ``"all"`` first), over each hemisphere and all vertices
    (``hemispheres``), and over each ROI within each hemisphere
    (``hemisphere_rois``).
    """
    from skvem.metrics import algonauts_score_voxels, pearson_r

    r = pearson_r(y_true, y_pred)
    nc = data.get("noise_ceiling")
    score = algonauts_score_voxels(y_true, y_pred, nc) if nc is not None else None
    every = np.arange(y_true.shape[1])
    rows = [{"roi": name, **_summary(np.asarray(idx), r, score)}
            for name, idx in {"all": every, **dict(data.rois)}.items() if np.size(idx)]
    hemispheres = {hemi: _summary(every[data.hemisphere_slices[hemi]], r, score)
                   for hemi in HEMISPHERES}
    hemispheres["all"] = _summary(every, r, score)
    hemisphere_rois = {
        hemi: {name: _summary(np.asarray(idx), r, score)
               for name, idx in data.hemisphere_rois.get(hemi, {}).items() if np.size(idx)}
        for hemi in HEMISPHERES
    }
    per_vertex = {"r": r} if score is None else {"r": r, "algonauts_score": score}
    return per_vertex, {"validation": rows, "hemispheres": hemispheres,
                        "hemisphere_rois": hemisphere_rois}


def format_report(report: dict) -> str:
    """The validation table of one subject, one ROI a line."""
    has_score = any(row.get("algonauts_score") is not None for row in report["validation"])
    lines = [
        f"Subject {report['subject']}: validation on {report['n_validation']} held-out training "
        f"images (trained on {report['n_train']}, {report['fit_seconds']:.0f} s):",
        f"{'ROI':<16}{'voxels':>8}{'mean r':>9}" + (f"{'score (%)':>11}" if has_score else ""),
    ]
    for row in report["validation"]:
        line = f"{row['roi']:<16}{row['n_voxels']:>8}{row['mean_r']:>9.3f}"
        if has_score:
            value = row.get("algonauts_score")
            line += f"{float('nan') if value is None else value:>11.1f}"
        lines.append(line)
    return "\n".join(lines)


def _pooled(parts, key):
    """Mean of ``key`` over the vertices of every part (a vertex-weighted mean)."""
    count = "n_scored" if key == "algonauts_score" else "n_voxels"
    pairs = [(p[key], p[count]) for p in parts if p.get(key) is not None and p.get(count)]
    total = sum(n for _, n in pairs)
    return float(sum(v * n for v, n in pairs) / total) if total else None


def leaderboard(reports) -> dict:
    """Leaderboard-style summary of subject reports: hemisphere and all-vertex means.

    The challenge ranks by the mean noise-normalised score over all vertices
    of all subjects; ``"all subjects"`` is that mean (vertex-weighted, over
    the vertices with a non-zero ceiling), next to the per-subject and
    per-hemisphere means. Without noise ceilings only the mean r is given.
    """
    rows = []
    for report in reports:
        rows.append({"subject": report["subject"], **{
            part: {key: report["hemispheres"][part].get(key)
                   for key in ("n_voxels", "n_scored", "mean_r", "algonauts_score")}
            for part in (*HEMISPHERES, "all")
        }})
    overall = {
        part: {key: _pooled([report["hemispheres"][part] for report in reports], key)
               for key in ("mean_r", "algonauts_score")}
        for part in (*HEMISPHERES, "all")
    }
    return {"subjects": rows, "all subjects": overall,
            "score": overall["all"]["algonauts_score"],
            "metric": "noise-normalised score (% of the noise ceiling; validation split)"}


def _cell(value, fmt):
    return "-" if value is None else format(value, fmt)


def _board_lines(board):
    has_score = board["score"] is not None
    key, fmt = ("algonauts_score", ".1f") if has_score else ("mean_r", ".3f")
    head = ["subject", "lh", "rh", "all vertices"]
    body = [[f"subj{row['subject']:02d}", *(_cell(row[p][key], fmt) for p in ("lh", "rh", "all"))]
            for row in board["subjects"]]
    body.append(["all subjects", *(_cell(board["all subjects"][p][key], fmt)
                                   for p in ("lh", "rh", "all"))])
    what = "mean noise-normalised score (%)" if has_score else "mean r (no noise ceiling)"
    return what, head, body


def format_leaderboard(board: dict) -> str:
    """The leaderboard as a fixed-width text table."""
    what, head, body = _board_lines(board)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt_row = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([f"Leaderboard ({what}, validation split):", fmt_row(head),
                      *(fmt_row(r) for r in body)])


def leaderboard_markdown(board: dict, reports) -> str:
    """The leaderboard and every subject's ROI table as Markdown."""
    what, head, body = _board_lines(board)
    lines = ["# Algonauts 2023 validation report", "", f"Leaderboard: {what}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    for report in reports:
        lines += ["", f"## Subject {report['subject']}", "",
                  f"{report['n_validation']} validation images, {report['n_train']} training "
                  f"images, fitted in {report['fit_seconds']:.0f} s.", "",
                  "| ROI | vertices | mean r | score (%) |", "|---|---|---|---|"]
        lines += [f"| {row['roi']} | {row['n_voxels']} | {row['mean_r']:.3f} | "
                  f"{_cell(row.get('algonauts_score'), '.1f')} |" for row in report["validation"]]
        for figure in report.get("figures", []):
            lines += ["", f"![{os.path.basename(figure)}]({os.path.basename(figure)})"]
    return "\n".join(lines) + "\n"


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _roi_order(data):
    names = [name for group in data.roi_groups.values() for name in group]
    return [n for n in dict.fromkeys(names) if n in data.rois]


def write_subject_figures(data, per_vertex, out, subject):
    """The ROI bar chart and the surface map of one subject; returns ``(paths, notes)``."""
    from skvem.plotting import plot_roi_scores, plot_surface_scores

    key = "algonauts_score" if "algonauts_score" in per_vertex else "r"
    label = "noise-normalised score (%)" if key == "algonauts_score" else "r"
    values = per_vertex[key]
    paths, notes = [], []
    scores = {}
    for hemi in HEMISPHERES:
        per_roi = {}
        for roi in _roi_order(data):
            v = values[data.hemisphere_rois[hemi].get(roi, np.array([], dtype=int))]
            v = v[np.isfinite(v)]
            if v.size:
                per_roi[roi] = v
        if per_roi:
            scores[hemi] = per_roi
    if scores:
        present = {roi for per_roi in scores.values() for roi in per_roi}
        fig = plot_roi_scores(scores, rois=[r for r in _roi_order(data) if r in present],
                              ylabel=label,
                              title=f"subject {subject}: validation, mean over each ROI's vertices")
        paths.append(_save(fig, os.path.join(out, f"subj{subject:02d}_rois.png")))
    else:
        notes.append("no ROI figure: the subject has no ROI masks")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty map is reported below
            fig = plot_surface_scores(values, data, colorbar_label=label,
                                      title=f"subject {subject}: validation {label}")
        paths.append(_save(fig, os.path.join(out, f"subj{subject:02d}_surface.png")))
    except ValueError as exc:
        notes.append(f"no surface map: {exc}")
    return paths, notes


def write_rois_figure(reports, path):
    """ROI means of every subject side by side per hemisphere, CIs over subjects."""
    from skvem.plotting import plot_roi_scores

    key = "algonauts_score" if all(r["hemispheres"]["all"].get("algonauts_score") is not None
                                   for r in reports) else "mean_r"
    scores = {}
    for hemi in HEMISPHERES:
        for report in reports:
            for roi, row in report.get("hemisphere_rois", {}).get(hemi, {}).items():
                if row.get(key) is not None:
                    scores.setdefault(hemi, {}).setdefault(roi, []).append(row[key])
    if not scores:
        return None
    label = "noise-normalised score (%)" if key == "algonauts_score" else "mean r"
    present = {roi for per_roi in scores.values() for roi in per_roi}
    order = [row["roi"] for report in reports for row in report["validation"]]
    fig = plot_roi_scores(scores, rois=[r for r in dict.fromkeys(order) if r in present],
                          ylabel=label,
                          title=f"{len(reports)} subject(s): mean over each ROI's vertices")
    return _save(fig, path)


def write_submission_zip(out, subjects) -> str:
    """Zip ``out/subjXX/{lh,rh}_pred_test.npy`` of ``subjects`` as the challenge expects.

    The archive holds the subject folders at its top level
    (``subj01/lh_pred_test.npy``, ...), the layout of the development kit's
    ``algonauts_2023_challenge_submission`` folder, and is written under a
    temporary name first.
    """
    path = os.path.join(out, SUBMISSION_ZIP)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for subject in sorted(subjects):
                for hemi in HEMISPHERES:
                    name = f"subj{subject:02d}/{hemi}_pred_test.npy"
                    archive.write(os.path.join(out, name), arcname=name)
    return path
