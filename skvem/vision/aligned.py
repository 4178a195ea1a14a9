"""Image features trained on fMRI and aligned with language: :class:`AlignedImageFeaturizer` (LLM-VEM)."""

from __future__ import annotations

import io
import numbers
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skvem.images import as_imageset
from skvem._utils.validation import check_float, check_int
from skvem.vision._params import DEFAULT_BACKBONE, check_common
from skvem.vision._text_targets import compute_text_targets

__all__ = ["AlignedImageFeaturizer"]


def _check_fmri(y, n_samples):
    from skvem._utils.validation import check_fmri

    if y is None:
        raise ValueError("AlignedImageFeaturizer.fit needs the fMRI responses y, shape (n_images, n_voxels)")
    y, _ = check_fmri(y, n_samples, name="y")
    y = np.asarray(y, dtype=np.float32)
    return y.reshape(-1, 1) if y.ndim == 1 else y


def _module_bytes(module) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(module, buf)
    return buf.getvalue()


def _module_from_bytes(data):
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


class AlignedImageFeaturizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Image features trained on fMRI and aligned with language (LLM-VEM).

    ``fit(images, fmri)`` computes text targets once with a clone of
    ``text`` (e.g. captions of a vision-language model embedded by a CLIP
    text encoder), reduces the fMRI to principal components, and trains
    the backbone with two linear heads on standardised backbone features::

        loss = voxel_loss + alignment_weight * symmetric_InfoNCE

    where ``voxel_loss`` is the mean squared error of the voxel head on the
    principal components and the InfoNCE loss (learnable temperature, CLIP
    style) pulls the projection of each image towards its text embedding
    and away from those of the other images of the batch. Training runs in
    two stages: the heads on the frozen backbone (its features are computed
    once), then the whole network with a learning rate lowered by
    ``backbone_lr_scale`` for the backbone. ``transform`` needs images only.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="open_clip:ViT-B-32"
        As in :class:`ImageFeaturizer`; ``"small-cnn"`` trains from
        scratch on a CPU in seconds.
    pretrained : "auto", bool, None or str, default="auto"
        As in :class:`ImageFeaturizer`.
    text : transformer, callable or None, default=None
        Maps the images to text targets ``(n_images, d)``: any
        scikit-learn transformer (usually a pipeline of
        :class:`~skvem.language.captioning.CaptionTransformer` and
        :class:`~skvem.language.text.CLIPTextEmbedder`) or a callable. It is cloned
        and fitted on the training images once per ``fit``. ``None`` (or
        ``alignment_weight=0``) trains without language and never calls it.
    alignment_weight : float, default=0.1
        Weight of the contrastive loss. The paper's small weight; the
        alignment study's sweep (0, 0.03, 0.1, 0.3, 1 on the pretrained
        small CNN, one world x 3 folds) does not resolve a better one: over
        all voxels the gains over 0 lie within each other's intervals, while
        1 trades early-visual accuracy for semantic accuracy (see
        docs/user_guide/method.rst).
    n_components : int or float, default=100
        Principal components of the z-scored fMRI predicted by the voxel
        head (at most the number of voxels); a float in (0, 1) keeps that
        fraction of variance. The components keep their relative
        variances and share one scale, so predicting zero costs 1. Not
        swept in this release: the demo and the alignment study use 32 for
        their 260 simulated voxels; 100 is meant for the ~40,000 vertices
        of an Algonauts subject.
    epochs : int, default=10
        Training epochs, both stages together. In the alignment study
        (``benchmarks/bench_alignment.py``, 400-scene training folds, 8
        epochs) the pretrained small CNN kept epoch 7 or 8 in every fit and
        the random one epochs 4-7; early stopping never triggered, so 10 is a
        cap that the validation loss, not the budget, should end.
    frozen_epochs : int or "auto", default="auto"
        Epochs of the first stage (heads only, backbone frozen). ``"auto"``:
        0 for randomly initialised backbones, else ``max(1, epochs // 5)``
        (not re-measured in this release).
    batch_size : int, default=64
        Images per step (and per batch in ``transform``), at least 2; the
        contrastive loss takes its negatives from the batch. Clipped to the
        number of training images; steps never see a single image (an odd
        image joins a neighbouring batch); halved after an out-of-memory
        error (with a warning).
    lr : float, default=1e-3
        Peak learning rate of the heads (AdamW).
    backbone_lr_scale : float or "auto", default="auto"
        Backbone learning rate / ``lr`` in the second stage. ``"auto"``:
        1.0 for randomly initialised backbones and for the pretrained
        ``"small-cnn"`` (``pretrained="scenes"``), 0.01 for other pretrained
        ones. The small CNN's value was chosen by the alignment study
        (``benchmarks/bench_alignment.py``: 0.01, 0.1, 1.0 on a selection
        world, by the score of the no-language model, so that the choice
        cannot favour alignment: 27.4, 27.6 and 27.7 % over all voxels, a
        near tie that 1.0 wins); 0.01 for large pretrained
        towers such as EVA02-CLIP follows CLIP fine-tuning practice and was
        not measured here.
    weight_decay : float, default=0.01
        AdamW weight decay (not applied to biases, norms, temperature).
    warmup_fraction : float, default=0.1
        Fraction of each stage spent warming the learning rate up linearly;
        a cosine decay follows.
    validation_fraction : float or None, default=0.1
        Fraction of the images held out to pick the best epoch and to stop
        early: the epoch with the lowest validation voxel loss is restored
        at the end (the loss turns up as soon as the network starts
        memorising the training fMRI, which the downstream ridge would be
        fitted on). ``None`` or 0 trains on everything for ``epochs`` epochs.
    patience : int or None, default=5
        Epochs without improvement of the validation voxel loss before a
        stage stops; ``None`` never stops early. It never triggered in the
        alignment study's 8-epoch fits (the validation loss was still
        falling); it guards longer runs and larger backbones.
    image_size : int, optional
        Input size of ``"small-cnn"`` (default 64) and module backbones.
    num_workers : int, default=0
        DataLoader worker processes decoding images.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    dtype : str, default="auto"
        Autocast dtype; ``"auto"`` is bfloat16 on CUDA (mixed precision,
        float32 weights), float32 elsewhere.
    random_state : int, RandomState or None, default=None
        Seeds the split, the initialisations, the batch order and dropout;
        with an int, ``fit`` is reproducible on the CPU (bit for bit with
        the same number of torch threads). The global torch random state is
        left untouched.
    verbose : bool or int, default=False
        Progress bars over epochs and feature extraction.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (backbone, standardisation, heads).
    history_ : list of dict
        One entry per epoch: ``epoch``, ``stage`` ("heads" or "finetune"),
        ``batch_size``, ``train_voxel_loss``, ``train_contrastive_loss``,
        ``lr``, ``val_voxel_loss``, ``val_contrastive_loss``, ``val_r``
        (mean Pearson r over voxels of the voxel head's reconstruction),
        ``temperature``, ``seconds``. Unavailable values are None.
    best_epoch_ : int
        Epoch whose weights were kept.
    n_features_out_ : int
        Number of features returned by :meth:`transform`.
    n_components_ : int
        Principal components used.
    pca_ : sklearn.decomposition.PCA
        PCA of the z-scored training fMRI.
    text_dim_ : int or None
        Dimension of the text targets (None without language).
    batch_size_ : int
        Batch size at the end of training (smaller than ``batch_size``
        after an out-of-memory retry).

    See Also
    --------
    ImageFeaturizer : Frozen features, the no-language baseline.

    Notes
    -----
    :meth:`transform` returns the standardised backbone features, i.e.
    exactly the input of the trained linear heads: the voxel head is one
    linear map of these features, so a voxelwise ridge on them can only do
    better, while the output of the voxel head alone (``n_components``
    numbers) would throw away what the ridge can use. The standardisation
    is a fixed per-feature affine map after training.

    A pickled estimator keeps the trained network (the whole fine-tuned
    backbone: these are trained weights), but not the fitted ``text``
    models, which are only needed during ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.vision.featurizers import AlignedImageFeaturizer
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8)
    >>> fmri = rng.normal(size=(40, 30))
    >>> feat = AlignedImageFeaturizer(backbone="small-cnn", n_components=5, epochs=2,
    ...                               batch_size=16, random_state=0)
    >>> feat.fit(images, fmri).transform(images).shape
    (40, 256)
    """

    def __init__(
        self,
        *,
        backbone=DEFAULT_BACKBONE,
        pretrained="auto",
        text=None,
        alignment_weight=0.1,
        n_components=100,
        epochs=10,
        frozen_epochs="auto",
        batch_size=64,
        lr=1e-3,
        backbone_lr_scale="auto",
        weight_decay=0.01,
        warmup_fraction=0.1,
        validation_fraction=0.1,
        patience=5,
        image_size=None,
        num_workers=0,
        device="auto",
        dtype="auto",
        random_state=None,
        verbose=False,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.text = text
        self.alignment_weight = alignment_weight
        self.n_components = n_components
        self.epochs = epochs
        self.frozen_epochs = frozen_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.backbone_lr_scale = backbone_lr_scale
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.image_size = image_size
        self.num_workers = num_workers
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        check_common(self)
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 for AlignedImageFeaturizer (the standardisation of the "
                f"features and the contrastive loss need two images per step); got {self.batch_size}"
            )
        check_float(self.alignment_weight, name="alignment_weight", min_val=0.0)
        check_int(self.epochs, name="epochs", min_val=1)
        if self.frozen_epochs != "auto":
            check_int(self.frozen_epochs, name="frozen_epochs", min_val=0, allow=("auto",))
            if self.frozen_epochs > self.epochs:
                raise ValueError(f"frozen_epochs={self.frozen_epochs} exceeds epochs={self.epochs}")
        check_float(self.lr, name="lr", min_val=0.0, include_boundaries="neither")
        check_float(self.backbone_lr_scale, name="backbone_lr_scale", min_val=0.0, allow=("auto",))
        check_float(self.weight_decay, name="weight_decay", min_val=0.0)
        check_float(self.warmup_fraction, name="warmup_fraction", min_val=0.0, max_val=1.0,
                    include_boundaries="left")
        if self.validation_fraction is not None:
            check_float(self.validation_fraction, name="validation_fraction", min_val=0.0,
                        max_val=1.0, include_boundaries="left")
        if self.patience is not None:
            check_int(self.patience, name="patience", min_val=1)
        nc = self.n_components
        if isinstance(nc, numbers.Integral) and not isinstance(nc, bool):
            check_int(nc, name="n_components", min_val=1)
        else:
            check_float(nc, name="n_components", min_val=0.0, max_val=1.0,
                        include_boundaries="neither")

    def _config(self, seed):
        from skvem.vision.training import TrainingConfig

        return TrainingConfig(
            n_components=self.n_components, epochs=self.epochs, frozen_epochs=self.frozen_epochs,
            batch_size=self.batch_size, lr=self.lr, backbone_lr_scale=self.backbone_lr_scale,
            weight_decay=self.weight_decay, warmup_fraction=self.warmup_fraction,
            validation_fraction=self.validation_fraction, patience=self.patience,
            alignment_weight=self.alignment_weight, seed=seed, device=self.device, dtype=self.dtype,
            num_workers=self.num_workers, verbose=self.verbose,
        )

    @property
    def _uses_text(self):
        return self.text is not None and self.alignment_weight > 0

    def fit(self, X, y):
        """Train the backbone and heads on images and their fMRI responses.

        Parameters
        ----------
        X : ImageSet, array of shape (n_images, H, W[, 3]), list of PIL images or paths
            The stimuli.
        y : array-like of shape (n_images, n_voxels) or (n_images,)
            fMRI responses, one row per image (trial-averaged).

        Returns
        -------
        self : AlignedImageFeaturizer

        Raises
        ------
        ValueError
            For fMRI with NaN or a length other than the number of images,
            fewer training images than ``n_components`` or than two, or a
            ``text`` step returning the wrong number of rows or non-finite
            values.
        """
        from skvem._utils.torch_utils import torch_seed
        from skvem.vision.training import train_aligned

        self._check_params()
        images = as_imageset(X)
        fmri = _check_fmri(y, len(images))
        text = partial(compute_text_targets, self.text) if self._uses_text else None
        result = train_aligned(images, fmri, text, backbone=self.backbone, pretrained=self.pretrained,
                               image_size=self.image_size, config=self._config(torch_seed(self.random_state)),
                               owner=type(self).__name__)
        self.model_ = result.model
        self._preprocess = result.preprocess
        self._fmri_targets = result.targets
        self.pca_ = result.targets.pca
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.batch_size_ = result.batch_size
        self.n_features_out_ = result.n_features
        self.n_components_ = int(result.targets.pca.n_components_)
        self.text_dim_ = result.text_dim
        self.backbone_name_ = result.backbone.name
        self.weights_ = result.backbone.weights
        return self

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def transform(self, X):
        """Features of the trained network; no text is needed.

        Parameters
        ----------
        X : ImageSet, array of shape (n_images, H, W[, 3]), list of PIL images or paths

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), float32
            Standardised backbone features (the input of the trained heads).
        """
        from skvem._utils.torch_utils import resolve_device, resolve_dtype
        from skvem.vision._pixels import extract_features

        check_is_fitted(self, "model_")
        images = as_imageset(X)
        if len(images) == 0:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        net = self.model_.to(device).eval()
        return extract_features(
            net.features,
            images,
            self._preprocess,
            batch_size=self.batch_size_,
            device=device,
            dtype=dtype,
            num_workers=self.num_workers,
            verbose=self.verbose,
            desc="aligned features",
            what="AlignedImageFeaturizer",
        )

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be the live __dict__ itself
        if "model_" in state:
            # torch.save keeps tensors as raw storage and lets __setstate__ map
            # a model trained on a GPU to the CPU.
            state["model_"] = _module_bytes(state["model_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state = dict(state)
            state["model_"] = _module_from_bytes(state["model_"])
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = []
        return tags
