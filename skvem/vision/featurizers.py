"""Image features for voxelwise encoding models: frozen, or trained with language.

:class:`ImageFeaturizer` runs a frozen backbone (the no-language baseline).
:class:`AlignedImageFeaturizer` trains a backbone to predict the principal
components of the fMRI while a contrastive loss pulls its image embeddings
towards text embeddings of the stimuli (LLM-VEM, Ma et al. 2024); at
prediction time it needs images only.

Both take images (an :class:`~skvem.images.ImageSet` or anything
:func:`~skvem.images.as_imageset` accepts) and return ``(n_images,
n_features)`` float32 arrays, so a voxelwise ridge
(:class:`skvem.encoding.ridge.VoxelRidgeCV`) can follow them in a pipeline.
"""

from __future__ import annotations

import io
import numbers

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils.validation import check_is_fitted

from skvem._utils.hub import release_models
from skvem.images import as_imageset

__all__ = ["AlignedImageFeaturizer", "ImageFeaturizer"]

_DEFAULT_BACKBONE = "open_clip:ViT-B-32"


# ---------------------------------------------------------------------------
# Parameter checks shared by both estimators
# ---------------------------------------------------------------------------


def _check_int(name, value, minimum, allow=()):
    if value in allow and not isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}; got {value!r}")
    return int(value)


def _check_float(name, value, low, high, *, low_open=False, high_open=False, allow=()):
    if value in allow and not isinstance(value, bool):
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be a number in {lo}{low}, {high}{hi}{extra}; got {value!r}")
    return float(value)


def _check_common(est):
    _check_int("batch_size", est.batch_size, 1)
    _check_int("num_workers", est.num_workers, 0)
    if est.image_size is not None:
        _check_int("image_size", est.image_size, 16)


def _check_fmri(y, n_samples):
    try:
        from skvem._utils.validation import check_fmri
    except ImportError:  # pragma: no cover - until skvem._utils.validation lands
        check_fmri = None
    if y is None:
        raise ValueError("AlignedImageFeaturizer.fit needs the fMRI responses y, shape (n_images, n_voxels)")
    if check_fmri is not None:
        y, _ = check_fmri(y, n_samples, name="y")
    else:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (1, 2) or not np.all(np.isfinite(y)) or len(y) != n_samples:
            raise ValueError(
                f"y must be a finite (n_images, n_voxels) array with {n_samples} rows; got "
                f"shape {y.shape}"
            )
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


# ---------------------------------------------------------------------------
# ImageFeaturizer
# ---------------------------------------------------------------------------


class ImageFeaturizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Frozen features of a pretrained (or random) image backbone.

    The no-language baseline of an encoding model: every image goes through
    a frozen network once, in batches, and its features (the network's
    embedding, or a pooled intermediate layer) are returned for a voxelwise
    ridge. Features of deterministic weights are cached on disk per image,
    so the folds of a cross-validation extract each image once.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="open_clip:ViT-B-32"
        ``"open_clip:NAME"`` (image tower; ``NAME`` may be
        ``"local-dir:/path"`` or ``"hf-hub:org/repo"``), ``"timm:NAME"``,
        ``"torchvision:NAME"``, ``"hf:ID_OR_DIR"`` (a transformers vision
        model or the vision tower of CLIP/SigLIP), ``"small-cnn"`` (a small
        random CNN, 256 features at 64 px), or a module mapping
        ``(B, 3, H, W)`` to features (ImageNet normalisation at
        ``image_size``).
    pretrained : "auto", bool, None or str, default="auto"
        Weights: ``"auto"``/``True`` for the library's default (the first
        open_clip tag of the model, e.g. ``"openai"`` for ViT-B-32; timm's
        default; torchvision's ``DEFAULT``; the checkpoint of an ``hf:``
        id), ``None``/``False`` for a random initialisation seeded by
        ``random_state``, or an open_clip tag, a torchvision weights name,
        or a checkpoint file path.
    layer : str, optional
        Name of a submodule (as in ``named_modules()``) whose output to use
        instead of the network's embedding; see :meth:`available_layers`.
        The forward pass stops after it.
    pooling : {"auto", "avg", "max", "cls", "flatten"}, default="auto"
        How a layer output that is not ``(B, d)`` becomes a vector: average
        (``"auto"``) or maximum over space or tokens, the first (class)
        token, or everything flattened.
    image_size : int, optional
        Input size of ``"small-cnn"`` (default 64) and module backbones
        (default 224); library backbones bring their own preprocessing.
    batch_size : int, default=64
        Images per forward pass; halved automatically when the
        accelerator runs out of memory (with a warning).
    num_workers : int, default=0
        DataLoader worker processes decoding and resizing images.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    dtype : str, default="auto"
        Autocast dtype; ``"auto"`` is bfloat16 on CUDA, float32 elsewhere.
        Features are always returned as float32.
    cache_dir : str, path-like, None or False, default=None
        Feature cache folder; ``None`` uses ``$SKVEM_CACHE_DIR`` or
        ``~/.cache/skvem``, ``False`` disables caching. Features are cached
        when the weights are deterministic: pretrained weights, or a random
        initialisation with an integer ``random_state`` (the seed is part of
        the key). Module backbones are never cached (their weights cannot
        be identified cheaply).
    random_state : int, RandomState or None, default=None
        Seed of a random initialisation (``"small-cnn"``,
        ``pretrained=None``). ``None`` draws a seed at ``fit``; the
        features are then consistent within the fitted estimator (and after
        pickling) but not cached.
    verbose : bool or int, default=False
        Progress bar over batches.

    Attributes
    ----------
    n_features_out_ : int
        Number of features returned by :meth:`transform`.
    backbone_name_ : str
        The resolved backbone.
    weights_ : {"pretrained", "random", "module"}
        Where the weights came from.
    seed_ : int
        Seed used for random initialisations.

    See Also
    --------
    AlignedImageFeaturizer : The same backbones, trained with fMRI and language.

    Notes
    -----
    Pickling drops the network (multi-GB for large backbones); it is
    rebuilt from the parameters on the next :meth:`transform`.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.vision.featurizers import ImageFeaturizer
    >>> images = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    >>> feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False)
    >>> feat.fit_transform(images).shape
    (8, 256)
    """

    def __init__(
        self,
        *,
        backbone=_DEFAULT_BACKBONE,
        pretrained="auto",
        layer=None,
        pooling="auto",
        image_size=None,
        batch_size=64,
        num_workers=0,
        device="auto",
        dtype="auto",
        cache_dir=None,
        random_state=None,
        verbose=False,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.device = device
        self.dtype = dtype
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.verbose = verbose

    # -- loading -------------------------------------------------------------

    def _check_params(self):
        from skvem.vision.backbones import POOLINGS

        _check_common(self)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {self.pooling!r}")
        if self.layer is not None and not isinstance(self.layer, str):
            raise ValueError(f"layer must be None or a module name (str); got {self.layer!r}")

    def _resolve(self, seed):
        from skvem.vision.backbones import resolve_backbone

        def load():
            return resolve_backbone(self.backbone, self.pretrained, image_size=self.image_size,
                                    seed=seed, owner=type(self).__name__)

        if isinstance(self.backbone, str) and self.backbone != "small-cnn" and self.pretrained not in (None, False):
            from skvem._utils.hub import memoized

            # Frozen pretrained weights are never modified: the clones that
            # cross-validation makes share one loaded copy.
            return memoized("image-backbone", (self.backbone, str(self.pretrained)), load)
        return load()

    def _loaded(self):
        """The backbone, reloaded after unpickling."""
        bb = getattr(self, "_backbone", None)
        if bb is None:
            bb = self._backbone = self._resolve(self.seed_)
        return bb

    def _forward_fn(self, bb):
        from skvem.vision.backbones import LayerTap, first_tensor, pool_features

        tap = LayerTap(bb, self.layer) if self.layer is not None else None
        pooling = self.pooling

        def forward(x):
            out = tap(x) if tap is not None else first_tensor(bb.module(x))
            return pool_features(out, pooling).flatten(1)

        return forward

    def available_layers(self):
        """Names the ``layer`` parameter accepts for this backbone, in forward order.

        Loads the backbone (without fitting) when needed.

        Returns
        -------
        layers : list of str
        """
        from skvem.vision.backbones import list_layers
        from skvem._utils.torch_utils import torch_seed

        bb = getattr(self, "_backbone", None)
        if bb is None:
            bb = self._resolve(getattr(self, "seed_", None) or torch_seed(0))
        return list_layers(bb)

    # -- estimator API ---------------------------------------------------------

    def fit(self, X=None, y=None):
        """Load the backbone and check ``layer`` and ``pooling``; nothing is learned.

        Parameters
        ----------
        X : ignored
            Accepted for pipeline compatibility.
        y : ignored

        Returns
        -------
        self : ImageFeaturizer
        """
        import torch

        from skvem._utils.torch_utils import resolve_device, torch_seed

        self._check_params()
        self.seed_ = torch_seed(self.random_state)
        bb = self._backbone = self._resolve(self.seed_)
        self.backbone_name_ = bb.name
        self.weights_ = bb.weights
        device = resolve_device(self.device)
        bb.module.to(device).eval()
        fwd = self._forward_fn(bb)
        size = bb.preprocess.to_uint8(_blank_image()).shape
        with torch.inference_mode():
            x = bb.preprocess.normalize(torch.zeros((2, *size), dtype=torch.uint8, device=device))
            self.n_features_out_ = int(fwd(x).shape[1])
        return self

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def _cache_namespace(self, bb, dtype):
        from skvem._utils.cache import namespace_key, resolve_cache

        cache = resolve_cache(self.cache_dir)
        deterministic = bb.weights == "pretrained" or (
            bb.weights == "random" and isinstance(self.random_state, numbers.Integral)
        )
        if cache is None or not deterministic or bb.identity is None:
            return None, None
        description = {
            "backbone": bb.identity,
            "layer": self.layer,
            "pooling": self.pooling,
            "preprocess": bb.preprocess.identity(),
            "dtype": str(dtype),
            "n_features": self.n_features_out_,
            "version": 1,
        }
        ns = namespace_key("image-features", description)
        cache.register(ns, "image-features", description)
        return cache, ns

    def transform(self, X):
        """Extract the features of every image.

        Parameters
        ----------
        X : ImageSet, array of shape (n_images, H, W[, 3]), list of PIL images or paths
            The stimuli; decoded one batch at a time.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), float32
        """
        from skvem.vision._pixels import extract_features
        from skvem._utils.torch_utils import resolve_device, resolve_dtype

        check_is_fitted(self, "n_features_out_")
        images = as_imageset(X)
        if len(images) == 0:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        bb = self._loaded()
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        bb.module.to(device).eval()
        cache, ns = self._cache_namespace(bb, dtype)
        return extract_features(
            self._forward_fn(bb),
            images,
            bb.preprocess,
            batch_size=self.batch_size,
            device=device,
            dtype=dtype,
            num_workers=self.num_workers,
            cache=cache,
            namespace=ns,
            verbose=self.verbose,
            desc=f"features ({bb.name})",
            what="ImageFeaturizer",
        )

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be the live __dict__ itself
        state.pop("_backbone", None)  # rebuilt from the parameters on demand
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags


def _blank_image():
    from PIL import Image

    return Image.new("RGB", (256, 256))


# ---------------------------------------------------------------------------
# AlignedImageFeaturizer
# ---------------------------------------------------------------------------


def _step_name(step):
    return type(step).__name__


def _run_text_step(step, data, name):
    if hasattr(step, "fit_transform"):
        return step.fit_transform(data)
    if hasattr(step, "fit") and hasattr(step, "transform"):
        return step.fit(data).transform(data)
    raise ValueError(
        f"text step {name} must be a scikit-learn transformer (fit/transform) or a callable; "
        f"got a {type(step).__name__}"
    )


def _n_rows(data):
    from sklearn.utils.validation import _num_samples

    try:
        return _num_samples(data)
    except TypeError:
        return None


def compute_text_targets(text, images):
    """Fit a clone of ``text`` on ``images`` and return checked ``(n, d)`` float32 targets.

    A :class:`~sklearn.pipeline.Pipeline` runs step by step so that an
    error names the step that went wrong (e.g. a captioner that returned
    fewer captions than images).
    """
    from sklearn.pipeline import Pipeline

    n = len(images)
    if isinstance(text, Pipeline):
        pipe = clone(text)
        steps = [(f"{name!r} ({_step_name(s)})", s) for name, s in pipe.steps
                 if s is not None and s != "passthrough"]
    elif hasattr(text, "fit") or hasattr(text, "fit_transform"):
        steps = [(_step_name(text), clone(text))]
    elif callable(text):
        steps = [(getattr(text, "__name__", type(text).__name__), text)]
    else:
        raise ValueError(
            "text must be None, a scikit-learn transformer mapping images to vectors "
            f"(e.g. make_pipeline(CaptionTransformer(...), CLIPTextEmbedder(...))) or a callable; got {text!r}"
        )
    if not steps:
        raise ValueError("text is a pipeline without steps; use text=None to train without language")
    data = images
    for name, step in steps:
        where = f"the text step {name}"
        data = step(data) if (callable(step) and not hasattr(step, "fit")) else _run_text_step(step, data, name)
        rows = _n_rows(data)
        if rows != n:
            raise ValueError(f"{where} returned {rows} rows for {n} images; it must return one per image")
    if hasattr(data, "toarray"):  # sparse output, e.g. TF-IDF
        data = data.toarray()
    try:
        out = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where} must return numeric vectors, shape (n_images, n_dims); got {type(data).__name__} "
            f"({exc}). Add an embedding step (e.g. CLIPTextEmbedder) after the captioner."
        ) from exc
    if out.ndim != 2 or out.shape[1] < 1:
        raise ValueError(f"{where} must return a 2-D array (n_images, n_dims); got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.all(np.isfinite(out), axis=1)))
        raise ValueError(f"{where} returned NaN or infinite values for {bad} of {n} images")
    return out


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
        Weight of the contrastive loss.
    n_components : int or float, default=100
        Principal components of the z-scored fMRI predicted by the voxel
        head (at most the number of voxels); a float in (0, 1) keeps that
        fraction of variance. The components keep their relative
        variances and share one scale, so predicting zero costs 1.
    epochs : int, default=10
        Training epochs, both stages together.
    frozen_epochs : int or "auto", default="auto"
        Epochs of the first stage (heads only, backbone frozen). ``"auto"``:
        0 for randomly initialised backbones, else ``max(1, epochs // 5)``.
    batch_size : int, default=64
        Images per step (and per batch in ``transform``); the contrastive
        loss takes its negatives from the batch. Clipped to the number of
        training images; halved after an out-of-memory error (with a
        warning).
    lr : float, default=1e-3
        Peak learning rate of the heads (AdamW).
    backbone_lr_scale : float or "auto", default="auto"
        Backbone learning rate / ``lr`` in the second stage. ``"auto"``:
        1.0 for randomly initialised backbones, 0.01 for pretrained ones.
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
        stage stops; ``None`` never stops early.
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
        backbone=_DEFAULT_BACKBONE,
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
        _check_common(self)
        _check_float("alignment_weight", self.alignment_weight, 0.0, np.inf, high_open=True)
        _check_int("epochs", self.epochs, 1)
        if self.frozen_epochs != "auto":
            _check_int("frozen_epochs", self.frozen_epochs, 0, allow=("auto",))
            if self.frozen_epochs > self.epochs:
                raise ValueError(f"frozen_epochs={self.frozen_epochs} exceeds epochs={self.epochs}")
        _check_float("lr", self.lr, 0.0, np.inf, low_open=True, high_open=True)
        _check_float("backbone_lr_scale", self.backbone_lr_scale, 0.0, np.inf, high_open=True, allow=("auto",))
        _check_float("weight_decay", self.weight_decay, 0.0, np.inf, high_open=True)
        _check_float("warmup_fraction", self.warmup_fraction, 0.0, 1.0, high_open=True)
        if self.validation_fraction is not None:
            _check_float("validation_fraction", self.validation_fraction, 0.0, 1.0, high_open=True)
        if self.patience is not None:
            _check_int("patience", self.patience, 1)
        nc = self.n_components
        if isinstance(nc, numbers.Integral) and not isinstance(nc, bool):
            _check_int("n_components", nc, 1)
        else:
            _check_float("n_components", nc, 0.0, 1.0, low_open=True, high_open=True)

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
        import torch

        from skvem.vision.backbones import resolve_backbone
        from skvem.vision._pixels import PixelStore
        from skvem._utils.torch_utils import resolve_device, resolve_dtype, torch_seed
        from skvem.vision.training import (
            AlignedNet,
            FMRITargets,
            TrainConfig,
            infer_n_features,
            train_aligned,
        )

        self._check_params()
        images = as_imageset(X)
        n = len(images)
        fmri = _check_fmri(y, n)
        seed = torch_seed(self.random_state)
        rng = np.random.RandomState(seed)

        frac = self.validation_fraction or 0.0
        n_val = int(np.ceil(frac * n)) if frac > 0 else 0
        n_train = n - n_val
        if frac > 0 and (n_val < 2 or n_train < 2):
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {n_train} training and "
                f"{n_val} validation images of {n}; both need at least 2 (use more images or "
                "validation_fraction=None)"
            )
        if n_train < 2:
            raise ValueError(f"AlignedImageFeaturizer needs at least 2 training images; got {n_train}")
        n_components = self.n_components
        if isinstance(n_components, numbers.Integral):
            if n_train < n_components:
                held = f" ({n} images minus {n_val} held out by validation_fraction)" if n_val else ""
                raise ValueError(
                    f"n_components={n_components} needs at least as many training images; got "
                    f"{n_train}{held}. Lower n_components or use more images."
                )
            n_components = min(int(n_components), fmri.shape[1])
        batch_size = self.batch_size
        batch_size = min(batch_size, n_train)

        perm = rng.permutation(n)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        text_targets = None
        device = resolve_device(self.device)
        if self._uses_text:
            text_targets = compute_text_targets(self.text, images)
            if device.type != "cpu":
                # A captioner (GPU-GBs for a 7B VLM) and a text encoder kept
                # for the next fold would share the accelerator with the
                # backbone being fine-tuned. Captions are cached on disk, so
                # dropping them costs a reload only for uncached images.
                for kind in ("captioner", "open_clip_text", "sentence_transformers"):
                    release_models(kind)

        dtype = resolve_dtype(self.dtype, device)
        targets = FMRITargets.fit(fmri[train_idx], n_components, seed)

        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            bb = resolve_backbone(self.backbone, self.pretrained, image_size=self.image_size, seed=seed,
                                  owner=type(self).__name__)
            random_init = bb.weights == "random"
            frozen = self.frozen_epochs
            if frozen == "auto":
                frozen = 0 if random_init else max(1, self.epochs // 5)
            scale = self.backbone_lr_scale
            if scale == "auto":
                scale = 1.0 if random_init else 0.01
            module = bb.module.to(device)
            n_features = infer_n_features(module, bb.preprocess, device)
            text_dim = None if text_targets is None else int(text_targets.shape[1])
            net = AlignedNet(module, n_features, targets.pca.n_components_, text_dim).to(device)

            store_kw = dict(num_workers=self.num_workers, batch_size=batch_size, verbose=self.verbose)
            train_store = PixelStore(images[train_idx], bb.preprocess, desc="decoding images (train)", **store_kw)
            val_store = (PixelStore(images[val_idx], bb.preprocess, desc="decoding images (val)", **store_kw)
                         if n_val else None)
            fmri_val = fmri[val_idx] if n_val else None
            config = TrainConfig(
                epochs=self.epochs,
                frozen_epochs=int(frozen),
                batch_size=int(batch_size),
                lr=float(self.lr),
                backbone_lr=float(self.lr) * float(scale),
                weight_decay=float(self.weight_decay),
                warmup_fraction=float(self.warmup_fraction),
                patience=self.patience,
                alignment_weight=float(self.alignment_weight),
                device=device,
                dtype=dtype,
                num_workers=self.num_workers,
                verbose=self.verbose,
                seed=seed,
            )
            history, best_epoch = train_aligned(
                net,
                config,
                bb.preprocess,
                train_store=train_store,
                val_store=val_store,
                targets=targets,
                T_train=targets.targets(fmri[train_idx]),
                T_val=None if fmri_val is None else targets.targets(fmri_val),
                Z_val=None if fmri_val is None else targets.zscore(fmri_val),
                text_train=None if text_targets is None else text_targets[train_idx],
                text_val=None if (text_targets is None or not n_val) else text_targets[val_idx],
            )

        self.model_ = net
        self._preprocess = bb.preprocess
        self.history_ = history
        self.best_epoch_ = int(best_epoch)
        self.n_features_out_ = int(n_features)
        self.n_components_ = int(targets.pca.n_components_)
        self.pca_ = targets.pca
        self._fmri_targets = targets
        self.text_dim_ = text_dim
        self.batch_size_ = int(history[-1]["batch_size"]) if history else int(batch_size)
        self.backbone_name_ = bb.name
        self.weights_ = bb.weights
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
        from skvem.vision._pixels import extract_features
        from skvem._utils.torch_utils import resolve_device, resolve_dtype

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
