"""Images to captions with a vision-language model, cached on disk.

:class:`CaptionTransformer` is the first step of the LLM-VEM text pipeline: a
vision-language model writes a description of every stimulus image, which a
text encoder (:mod:`skvem.language.text`) then embeds. Captioning is by far the most
expensive step (GPU-hours for the 73,000 NSD images), so every caption is
stored on disk as soon as its batch finishes, keyed by everything that
determines it. Cross-validation folds, grid-search candidates, parallel jobs
and re-runs after a crash therefore caption each image once.

The cache
---------
Captions live in skvem's SQLite cache (:mod:`skvem._utils.cache`):
``$SKVEM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/skvem`` or
``~/.cache/skvem``, or the folder given as ``cache_dir``. Delete that folder,
or call ``skvem._utils.cache.clear_cache()`` (``clear_cache(cache_dir)`` for a
custom folder), to clear it. One entry is keyed by

* the captioner's identity: a Hugging Face id with its ``revision``
  (``None`` counts as the default branch: pin a commit to make the cache
  exact); for a local folder, a hash of its contents (file names, sizes and
  bytes: whole for files up to 8 MiB, three 1 MiB samples of larger weight
  files; modification times are ignored so a copied folder keeps its
  captions); for a callable, its ``cache_key`` attribute, else (plain
  module-level functions only) its name with a hash of its code and the
  plain data it reads;
* ``prompt``, ``max_new_tokens``, ``num_beams`` and ``generate_kwargs``;
* the image's content fingerprint (:meth:`skvem.images.ImageSet.fingerprints`).

``engine``, ``device``, ``dtype``, ``batch_size`` and ``num_workers`` are *not*
part of the key: captions made in bfloat16 on a GPU, or by vLLM, are reused by
a CPU run, though they may differ from float32's in rare near-ties.
:meth:`CaptionTransformer.cache_settings` returns what the key is made of.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skvem._utils.cache import resolve_cache
from skvem._utils.model_memo import PicklesWithoutLoadedModels
from skvem._utils.progress import progress
from skvem._utils.validation import check_int
from skvem.images import ImageSet, as_imageset
from skvem.language._caption_steps import CaptionPlan, check_captions, precomputed_captions
from skvem.language._prefetch import parallel_fingerprints, prefetch_batches
from skvem.language.engines import check_engine_params, load_engine

__all__ = ["CaptionTransformer", "DEFAULT_CAPTIONER", "DEFAULT_PROMPT"]

DEFAULT_CAPTIONER = "HuggingFaceTB/SmolVLM-256M-Instruct"
DEFAULT_PROMPT = "Describe this image in detail."
# Bumped when the way captions are produced changes, to invalidate old entries.
_CACHE_VERSION = 1


def _callable_identity(func):
    """``(identity, cacheable, reason)`` of a callable captioner."""
    key = getattr(func, "cache_key", None)
    if key is not None:
        return f"callable:{key}", True, ""
    import inspect

    from skvem._utils.callable_key import function_key

    target = func if hasattr(func, "__qualname__") else type(func)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or type(func).__name__
    name = f"{module}.{qualname}"
    # A name alone is no identity: two scripts define ``describe`` in
    # __main__, and an edited body keeps its name. Plain module-level
    # functions are keyed by their code and the data they read; lambdas and
    # local functions share names with others, and partials, bound methods
    # and callable instances carry configuration the code does not show
    # (``partial(caption, model="large")``): those need a cache_key.
    if not inspect.isfunction(func) or "<lambda>" in qualname or "<locals>" in qualname:
        reason = "a lambda, local function or configured callable has no stable identity"
        return f"callable:{name}", False, reason
    code_key, reason = function_key(func)
    if code_key is None:
        return f"callable:{name}", False, reason
    return f"callable:{name}#{code_key}", True, ""


class CaptionTransformer(PicklesWithoutLoadedModels, TransformerMixin, BaseEstimator):
    """Describe images with a vision-language model (or any captioner).

    Parameters
    ----------
    model : str or callable, default="HuggingFaceTB/SmolVLM-256M-Instruct"
        The captioner. One of:

        * a Hugging Face id or a local folder of any model that
          ``transformers.AutoModelForImageTextToText`` loads. Chat VLMs
          (SmolVLM/Idefics3, Qwen2-VL, LLaVA, ...) get ``prompt`` through
          their chat template; task-prompt models (Florence-2, PaliGemma)
          get ``prompt`` as is (e.g. ``"<MORE_DETAILED_CAPTION>"``);
          encoder-decoder captioners without a chat template (BLIP, GIT)
          caption without a prompt. The default, SmolVLM-256M-Instruct, is
          a 256M-parameter chat VLM that writes paragraph-long descriptions
          and runs on a CPU (its processor needs the ``num2words`` package);
        * a callable ``f(list of PIL.Image) -> list of str``; its
          ``cache_key`` attribute identifies it in the cache; without one, a
          module-level function is keyed by its name, code and the plain
          data it reads (:mod:`skvem._utils.callable_key`), so editing it
          recaptions. Lambdas, local functions, partials, callable objects
          and functions that read other objects (a loaded model) are not
          cached without a ``cache_key`` (with a warning);
        * ``"precomputed"``: return the captions the :class:`ImageSet`
          carries (e.g. COCO captions of NSD images).
    prompt : str, default="Describe this image in detail."
        The instruction given to chat VLMs (see ``model``).
    max_new_tokens : int, default=128
        Length limit of each caption, in tokens.
    num_beams : int, default=1
        Beam width; 1 is greedy decoding. Decoding is never sampled, so
        captions are reproducible (and cacheable).
    batch_size : int, default=8
        Images per call of the model (and per cache write). With
        ``engine="vllm"``, use a few hundred: vLLM schedules a whole call at
        once.
    generate_kwargs : dict, optional
        Further arguments of ``model.generate`` (e.g.
        ``{"repetition_penalty": 1.2}``); part of the cache key.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    dtype : str, default="auto"
        Weights' precision: ``"auto"`` is bfloat16 on CUDA, float32
        elsewhere.
    revision : str, optional
        Branch, tag or commit of a Hugging Face repository.
    engine : {"hf", "vllm"}, default="hf"
        What runs a Hugging Face id or folder: ``"hf"`` is
        ``transformers``' ``generate`` in this process; ``"vllm"`` is vLLM's
        offline batched generation (optional extra ``skvem[vllm]``, CUDA
        only) with the same prompt and chat template, greedy, into the same
        cache entries. ``"vllm"`` supports ``num_beams=1`` and the
        ``generate_kwargs`` ``repetition_penalty`` and ``min_new_tokens``.
    engine_kwargs : dict, optional
        Options of the engine's model loader; with ``"vllm"``, arguments of
        ``vllm.LLM`` (e.g. ``{"tensor_parallel_size": 2}``). Not part of the
        cache key.
    num_workers : int, default=2
        Threads decoding the next batches of images while the model
        captions the current one (and hashing images for the cache); ``0``
        decodes in the calling thread.
    cache_dir : str, path, None or False, default=None
        Where captions are cached; ``None`` is skvem's default cache
        folder (see the module documentation), ``False`` switches caching
        off.
    verbose : bool or int, default=False
        Show a progress bar while captioning.

    Attributes
    ----------
    captioner_id_ : str
        The identity of the captioner used in cache keys.

    See Also
    --------
    skvem.language.text.CLIPTextEmbedder : Embeds the captions.

    Notes
    -----
    The model loads lazily, the first time an image is not in the cache,
    and is shared by clones within a process. Pickling a fitted transformer
    leaves the model out; it reloads on demand. Every batch is written to
    the cache as soon as it is captioned, in one transaction: a run killed
    at any moment loses at most the batch in flight, and the next run
    resumes. Several processes (``cross_val_score(..., n_jobs=2)``) may
    share the cache. Identical images are captioned once.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.language.captioning import CaptionTransformer
    >>> images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    >>> def describe(pil_images):
    ...     return ["a black square" for _ in pil_images]
    >>> CaptionTransformer(model=describe, cache_dir=False).fit_transform(images)
    array(['a black square', 'a black square'], dtype=object)

    With a vision-language model (downloads it on first use):

    >>> captioner = CaptionTransformer(prompt="Describe this image in detail.")  # doctest: +SKIP
    >>> captioner.fit_transform(images)  # doctest: +SKIP
    """

    # The captioner is reloaded from `model` on demand, never pickled.
    _loaded_attributes = ("_captioner_", "_captioner_key")

    def __init__(
        self,
        *,
        model=DEFAULT_CAPTIONER,
        prompt=DEFAULT_PROMPT,
        max_new_tokens=128,
        num_beams=1,
        batch_size=8,
        generate_kwargs=None,
        device="auto",
        dtype="auto",
        revision=None,
        engine="hf",
        engine_kwargs=None,
        num_workers=2,
        cache_dir=None,
        verbose=False,
    ):
        self.model = model
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.generate_kwargs = generate_kwargs
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.engine = engine
        self.engine_kwargs = engine_kwargs
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.verbose = verbose

    # -- parameters ---------------------------------------------------------

    def _check_params(self):
        for name in ("max_new_tokens", "num_beams", "batch_size"):
            value = getattr(self, name)
            check_int(value, name=name, min_val=1, owner="CaptionTransformer")
        check_int(self.num_workers, name="num_workers", min_val=0, owner="CaptionTransformer")
        if not (
            callable(self.model)
            or (isinstance(self.model, (str, os.PathLike)) and os.fspath(self.model))
        ):
            raise ValueError(
                "CaptionTransformer: model must be a Hugging Face id, a local folder, a callable "
                f"or 'precomputed'; got {self.model!r}"
            )
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise ValueError(
                f"CaptionTransformer: prompt must be a str or None; got {self.prompt!r}"
            )
        if self.generate_kwargs is not None:
            if not isinstance(self.generate_kwargs, dict):
                raise ValueError(
                    "CaptionTransformer: generate_kwargs must be a dict or None; "
                    f"got {self.generate_kwargs!r}"
                )
            clash = {"max_new_tokens", "num_beams", "do_sample"} & set(self.generate_kwargs)
            if clash:
                raise ValueError(
                    f"CaptionTransformer: set {sorted(clash)} through the parameters, not "
                    "generate_kwargs (sampling is not supported: captions must be reproducible)"
                )
        if self.revision is not None and not isinstance(self.revision, str):
            raise ValueError(
                f"CaptionTransformer: revision must be a str or None; got {self.revision!r}"
            )
        check_engine_params(
            self.engine,
            num_beams=self.num_beams,
            generate_kwargs=self.generate_kwargs,
            engine_kwargs=self.engine_kwargs,
            owner="CaptionTransformer",
        )
        if self.engine != "hf" and (callable(self.model) or self._is_precomputed()):
            raise ValueError(
                f"CaptionTransformer: engine={self.engine!r} runs a Hugging Face id or folder; "
                f"model is {self.model!r}"
            )
        resolve_cache(self.cache_dir)  # raises ValueError for a bad cache_dir

    def _is_precomputed(self):
        return isinstance(self.model, str) and self.model == "precomputed"

    def _resolve(self):
        from skvem._utils.hub import resolve_pretrained

        return resolve_pretrained(
            self.model,
            revision=self.revision,
            owner="CaptionTransformer",
            param="model",
            required_file=("config.json",),
        )

    def _identity(self):
        """``(captioner identity, cacheable, why not)``; no network, no model loading."""
        if self._is_precomputed():
            return "precomputed", False, ""
        if callable(self.model):
            return _callable_identity(self.model)
        from skvem._utils.hub import folder_fingerprint, looks_like_path

        spec = os.fspath(self.model)
        if os.path.isdir(os.path.expanduser(spec)):
            return f"folder:{folder_fingerprint(os.path.expanduser(spec))}", True, ""
        if looks_like_path(spec):
            self._resolve()  # raises the error that says what was looked for
        # A Hugging Face id is identified by name, whether or not it is
        # downloaded yet, so cached captions are found without the model.
        return f"hf:{spec}@{self.revision or 'main'}", True, ""

    def _settings(self, identity):
        kwargs = {k: self.generate_kwargs[k] for k in sorted(self.generate_kwargs or {})}
        return {
            "captioner": identity,
            "prompt": self.prompt,
            "max_new_tokens": int(self.max_new_tokens),
            "num_beams": int(self.num_beams),
            "generate_kwargs": kwargs,
            "version": _CACHE_VERSION,
        }

    def cache_settings(self):
        """What a caption's cache entry is keyed by (besides the image).

        Needs neither fitting nor the model. ``namespace_key("caption",
        settings)`` (:func:`skvem._utils.cache.namespace_key`) is the cache
        namespace of these captions.

        Returns
        -------
        settings : dict
            ``captioner`` (identity, see the module documentation),
            ``prompt``, ``max_new_tokens``, ``num_beams``,
            ``generate_kwargs`` and ``version``.

        Raises
        ------
        ValueError
            For an invalid parameter, or uncached captions (``"precomputed"``,
            a callable without a stable identity).
        """
        self._check_params()
        identity, cacheable, why = self._identity()
        if not cacheable:
            raise ValueError(f"CaptionTransformer: {identity!r} is not cached: {why}")
        return self._settings(identity)

    # -- estimator API --------------------------------------------------------

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned and no model is loaded.

        Parameters
        ----------
        X : ImageSet, array or list of images, optional
            Not used (checked to be an accepted image input).
        y : None
            Ignored.

        Returns
        -------
        self : object

        Raises
        ------
        ValueError
            For an invalid parameter.
        skvem._utils.hub.ModelNotFoundError
            When ``model`` is a path to a folder that does not exist.
        """
        self._check_params()
        if X is not None:
            as_imageset(X)
        self.captioner_id_ = self._identity()[0]
        return self

    def transform(self, X):
        """Caption images, reusing cached captions.

        Parameters
        ----------
        X : ImageSet, ndarray of shape (n, H, W[, 3]), list of PIL images or paths
            The images (see :func:`skvem.images.as_imageset`).

        Returns
        -------
        captions : ndarray of object, shape (n_images,)
            One Python ``str`` per image: the model's answer only (no
            prompt, no special tokens, stripped).

        Raises
        ------
        skvem.images.ImageLoadError
            When an image cannot be read (the message names the file and
            its index); nothing is captioned or cached then.
        skvem._utils.hub.ModelNotFoundError
            When the model is needed but can be neither found nor
            downloaded.
        ValueError
            With ``model="precomputed"``, when the images carry no captions
            or some are missing (their indices are named).
        """
        check_is_fitted(self)
        self._check_params()
        images = as_imageset(X)
        if len(images) == 0:
            return np.empty(0, dtype=object)
        if self._is_precomputed():
            return precomputed_captions(images)
        plan = self._plan(images)
        if plan.todo:
            captioner, name = self._get_captioner(), self._name()
            bar = progress(total=len(plan.todo), verbose=self.verbose, desc="captioning")
            batches = plan.batches(self.batch_size)
            try:
                for batch, pil in prefetch_batches(images, batches, num_workers=self.num_workers):
                    plan.store(batch, check_captions(captioner(pil), len(batch), name))
                    bar.update(len(batch))
            finally:
                bar.close()
        return plan.finish()

    def _plan(self, images):
        """What to caption: cached captions filled in, one image per fingerprint."""
        identity, cacheable, reason = self._identity()
        cache = resolve_cache(self.cache_dir)
        if cache is not None and not cacheable:
            warnings.warn(
                f"CaptionTransformer: captions of {identity.split(':', 1)[1]} are not cached "
                f"because {reason}; give it a `cache_key` attribute (a str naming the "
                "captioner and its version) to cache them.",
                UserWarning,
                stacklevel=3,
            )
            cache = None
        if cache is None:
            return CaptionPlan(len(images))
        # Fingerprinting reads every image first, so an unreadable one fails
        # before anything is captioned or written.
        fingerprints = parallel_fingerprints(images, num_workers=self.num_workers)
        return CaptionPlan(len(images), cache, "caption", self._settings(identity), fingerprints)

    def _name(self):
        if callable(self.model):
            return getattr(self.model, "__name__", type(self.model).__name__)
        return self.model

    def _get_captioner(self):
        """A function ``list of PIL images -> list of str``; loads the model."""
        if callable(self.model):
            return self.model
        # Reload when the model or how it runs changed since the last load
        # (set_params needs no refit here: fit learns nothing).
        load_key = (
            os.fspath(self.model),
            self.revision,
            self.device,
            self.dtype,
            self.engine,
            repr(sorted((self.engine_kwargs or {}).items())),
        )
        model = getattr(self, "_captioner_", None)
        if model is None or getattr(self, "_captioner_key", None) != load_key:
            from skvem._utils.hub import path_stamp as _path_stamp

            resolved = self._resolve()
            stamp = _path_stamp(resolved.location) if resolved.kind == "local" else None
            model = load_engine(
                self.engine,
                resolved,
                device=self.device,
                dtype=self.dtype,
                stamp=stamp,
                engine_kwargs=self.engine_kwargs,
                owner="CaptionTransformer",
            )
            self._captioner_ = model
            self._captioner_key = load_key
        prompt, max_new, beams, kwargs = (
            self.prompt,
            int(self.max_new_tokens),
            int(self.num_beams),
            self.generate_kwargs,
        )
        return lambda pil: model(
            pil, prompt=prompt, max_new_tokens=max_new, num_beams=beams, generate_kwargs=kwargs
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.target_tags.required = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
