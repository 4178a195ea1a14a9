"""Frozen image features: :class:`ImageFeaturizer`, the no-language baseline."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skvem._utils.model_memo import PicklesWithoutLoadedModels
from skvem.images import as_imageset
from skvem.vision._params import DEFAULT_BACKBONE, check_common

__all__ = ["ImageFeaturizer"]


class ImageFeaturizer(PicklesWithoutLoadedModels, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                      BaseEstimator):
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

    # The backbone is rebuilt from the parameters on demand, never pickled.
    _loaded_attributes = ("_backbone",)

    def __init__(
        self,
        *,
        backbone=DEFAULT_BACKBONE,
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

        check_common(self)
        if not isinstance(self.pooling, str) or self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {self.pooling!r}")
        if self.layer is not None and not isinstance(self.layer, str):
            raise ValueError(f"layer must be None or a module name (str); got {self.layer!r}")

    def _resolve(self, seed):
        from skvem.vision.backbones import resolve_backbone

        def load():
            return resolve_backbone(self.backbone, self.pretrained, image_size=self.image_size,
                                    seed=seed, owner=type(self).__name__)

        if isinstance(self.backbone, str) and self.backbone != "small-cnn" and self.pretrained not in (None, False):
            from skvem._utils.hub import local_stamp, memoized

            # Frozen pretrained weights are never modified: the clones that
            # cross-validation makes share one loaded copy; a checkpoint
            # rewritten at the same path is a new key (its size and mtime).
            key = (self.backbone, str(self.pretrained), local_stamp(self.backbone, self.pretrained))
            return memoized("image-backbone", key, load)
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
        from skvem._utils.torch_utils import torch_seed
        from skvem.vision.backbones import list_layers

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
        from skvem._utils.torch_utils import resolve_device, torch_seed
        from skvem.vision._pixels import probe_n_features

        self._check_params()
        self.seed_ = torch_seed(self.random_state)
        bb = self._backbone = self._resolve(self.seed_)
        self.backbone_name_ = bb.name
        self.weights_ = bb.weights
        device = resolve_device(self.device)
        bb.module.to(device).eval()
        self.n_features_out_ = probe_n_features(self._forward_fn(bb), bb.preprocess, device)
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
        from skvem._utils.torch_utils import resolve_device, resolve_dtype
        from skvem.vision._pixels import extract_features

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
