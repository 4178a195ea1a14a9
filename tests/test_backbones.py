"""The backbone resolver, preprocessing, layers and the contrastive loss (offline, tiny models)."""

import math

import pytest
import torch
from skvem.testing.backbones import (
    TinyNet,
    random_images,
    tiny_hf_clip,
    tiny_hf_vit,
    tiny_open_clip_checkpoint,
    tiny_open_clip_local_dir,
    tiny_timm_checkpoint,
)
from PIL import Image

from skvem.vision.backbones import LayerTap, list_layers, pool_features, resolve_backbone
from skvem.vision.contrastive import SymmetricInfoNCE
from skvem._utils.hub import ModelNotFoundError


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-backbones")
    oc_name, oc_ckpt = tiny_open_clip_checkpoint(str(root))
    timm_name, timm_ckpt = tiny_timm_checkpoint(str(root / "timm"))
    return {
        "open_clip": (oc_name, oc_ckpt),
        "open_clip_dir": (tiny_open_clip_local_dir(str(root / "oc-dir")), "auto"),
        "timm_file": (timm_name, timm_ckpt),
        "timm_random": ("timm:test_vit", None),
        "torchvision": ("torchvision:mobilenet_v3_small", None),
        "hf_vit": (tiny_hf_vit(str(root / "vit")), "auto"),
        "hf_clip": (tiny_hf_clip(str(root / "clip")), "auto"),
        "module": (TinyNet(), "auto"),
        "small_cnn": ("small-cnn", "auto"),
    }


def _image(seed=0, shape=(45, 61)):
    return Image.fromarray(random_images(1, seed=seed)[0]).resize(shape[::-1])


@pytest.mark.parametrize(
    "key, dim, weights",
    [
        ("open_clip", 16, "pretrained"),
        ("open_clip_dir", 16, "pretrained"),
        ("timm_file", 96, "pretrained"),
        ("timm_random", 64, "random"),
        ("torchvision", 1024, "random"),
        ("hf_vit", 32, "pretrained"),
        ("hf_clip", 12, "pretrained"),
        ("module", 8, "module"),
        ("small_cnn", 256, "random"),
    ],
)
def test_every_family_resolves_offline(models, key, dim, weights):
    spec, pretrained = models[key]
    bb = resolve_backbone(spec, pretrained, seed=0)
    assert bb.weights == weights
    pixels = torch.stack([bb.preprocess.to_uint8(_image(s)) for s in range(2)])
    assert pixels.dtype == torch.uint8 and pixels.shape[0] == 2
    with torch.inference_mode():
        out = bb.module.eval()(bb.preprocess.normalize(pixels))
    assert tuple(out.shape) == (2, dim)
    assert torch.isfinite(out).all()
    # Cache identities exist for everything but a user's module.
    assert (bb.identity is None) == (key == "module")


def test_checkpoint_weights_are_loaded(models, tmp_path):
    spec, ckpt = models["open_clip"]
    a = resolve_backbone(spec, ckpt, seed=1).module
    b = resolve_backbone(spec, ckpt, seed=2).module
    c = resolve_backbone(spec, None, seed=2).module
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the file, not the seed
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_hf_clip_keeps_only_the_image_tower(models):
    bb = resolve_backbone(*models["hf_clip"])
    names = [n for n, _ in bb.module.named_modules()]
    assert not any("text" in n for n in names)
    assert bb.module.projection is not None


@pytest.mark.parametrize("key", ["open_clip", "timm_file", "torchvision", "hf_vit", "hf_clip"])
def test_preprocessing_matches_the_library(models, key):
    """Splitting preprocessing into uint8 resize/crop + batch normalisation changes nothing."""
    spec, pretrained = models[key]
    bb = resolve_backbone(spec, pretrained, seed=0)
    img = _image(3, shape=(70, 90))
    ours = bb.preprocess.normalize(bb.preprocess.to_uint8(img)[None])[0]
    family, _, name = spec.partition(":")
    if family == "open_clip":
        import open_clip

        _, _, reference = open_clip.create_model_and_transforms(name, pretrained=pretrained)
        expected = reference(img)
    elif family == "timm":
        import timm
        import timm.data

        model = timm.create_model(name, pretrained=False)
        expected = timm.data.create_transform(**timm.data.resolve_model_data_config(model))(img)
    elif family == "torchvision":
        import torchvision.models as tvm

        expected = tvm.get_model_weights(name).DEFAULT.transforms()(img)
    else:
        from transformers import AutoImageProcessor

        expected = AutoImageProcessor.from_pretrained(name)(images=[img], return_tensors="pt")["pixel_values"][0]
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected.float(), atol=1e-5, rtol=1e-5)


def test_unknown_backbones_list_what_is_accepted():
    with pytest.raises(ValueError, match="accepted:.*open_clip:NAME.*timm:NAME.*torchvision:NAME.*hf:ID_OR_DIR.*small-cnn"):
        resolve_backbone("resnet50")
    with pytest.raises(ValueError, match=r"unknown timm model 'resnett18'; did you mean \['resnet18'"):
        resolve_backbone("timm:resnett18", None)
    with pytest.raises(ValueError, match="unknown torchvision"):
        resolve_backbone("torchvision:not_a_model", None)
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-B-3'"):
        resolve_backbone("open_clip:ViT-B-3", None)
    with pytest.raises(ValueError, match="backbone must be one of"):
        resolve_backbone(42)
    with pytest.raises(ValueError, match="pretrained must be"):
        resolve_backbone("small-cnn", pretrained=3.5)
    with pytest.raises(ValueError, match="must be 'scenes'"):
        resolve_backbone("small-cnn", pretrained="imagenet")
    with pytest.raises(ValueError, match="image_size is used by 'small-cnn'"):
        resolve_backbone("timm:test_vit", None, image_size=64)
    with pytest.raises(ValueError, match="neither an open_clip tag"):
        resolve_backbone("open_clip:ViT-B-32", "not-a-tag")


def test_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="(?s)Looked for.*hf:/path/to/folder"):
        resolve_backbone("hf:skvem-tests/never-cached-model", owner="ImageFeaturizer")
    with pytest.raises(ModelNotFoundError, match="(?s)ImageFeaturizer.*Looked for"):
        resolve_backbone(f"hf:{tmp_path / 'missing'}", owner="ImageFeaturizer")
    with pytest.raises(ModelNotFoundError, match="(?s)not found.*open_clip_config.json"):
        resolve_backbone(f"open_clip:local-dir:{tmp_path / 'missing'}")
    with pytest.raises(OSError, match="(?s)timm:test_resnet.*pretrained='/path/to/model.safetensors'"):
        resolve_backbone("timm:test_resnet", "auto")


def test_openai_tag_gets_quick_gelu_on_both_towers(models, monkeypatch):
    """The openai weights were trained with QuickGELU; open_clip only warns, so both towers must ask."""
    import open_clip
    from open_clip.transformer import QuickGELU

    from skvem._utils import open_clip_spec
    from skvem.language._text_models import load_open_clip_text

    monkeypatch.setattr(open_clip_spec, "is_offline", lambda: False)  # nothing is downloaded: see spy
    real, tiny = open_clip.create_model_and_transforms, models["open_clip"][0].split(":", 1)[1]
    calls = []

    class Stop(Exception):
        pass

    def spy(name, pretrained=None, **kw):
        calls.append((name, pretrained, kw.get("force_quick_gelu")))
        if stop:
            raise Stop
        return real(tiny, pretrained=None, **kw)  # a tiny random stand-in for the image tower

    monkeypatch.setattr(open_clip, "create_model_and_transforms", spy)
    stop = False
    image = resolve_backbone("open_clip:ViT-B-32", "openai")
    assert any(isinstance(m, QuickGELU) for m in image.module.modules())
    assert image.identity["force_quick_gelu"] is True  # not the cache entries of plain-GELU features
    resolve_backbone("open_clip:ViT-B-32", "auto")  # the first tag of ViT-B-32 is "openai"
    resolve_backbone("open_clip:ViT-B-32-quickgelu", "openai")  # QuickGELU is in the architecture
    stop = True
    with pytest.raises(Stop):
        load_open_clip_text("ViT-B-32", "openai", device="cpu")
    assert calls == [("ViT-B-32", "openai", True)] * 2 + [("ViT-B-32-quickgelu", "openai", False),
                                                          ("ViT-B-32", "openai", True)]
    assert not open_clip_spec.resolve_open_clip("ViT-B-32", "laion2b_s34b_b79k").force_quick_gelu


def test_small_cnn_size_and_seeding():
    a = resolve_backbone("small-cnn", seed=0).module
    b = resolve_backbone("small-cnn", seed=0).module
    c = resolve_backbone("small-cnn", seed=1).module
    n_params = sum(p.numel() for p in a.parameters())
    assert 100_000 <= n_params <= 300_000
    assert a.out_features == 256
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))
    # GroupNorm: an image's features do not depend on the rest of the batch.
    with torch.inference_mode():
        torch.testing.assert_close(a(x)[:1], a(x[:1]))


def test_module_backbone_is_copied():
    net = TinyNet()
    bb = resolve_backbone(net)
    assert bb.module is not net
    bb.module.conv.weight.data.zero_()
    assert net.conv.weight.abs().sum() > 0


def test_layer_tap_and_errors(models):
    bb = resolve_backbone("small-cnn", seed=0)
    assert "blocks.1" in list_layers(bb)
    x = bb.preprocess.normalize(torch.zeros((2, 3, 64, 64), dtype=torch.uint8))
    out = LayerTap(bb, "blocks.1")(x)
    assert tuple(out.shape) == (2, 64, 16, 16)
    assert tuple(pool_features(out, "avg").shape) == (2, 64)
    assert tuple(pool_features(out, "flatten").shape) == (2, 64 * 16 * 16)
    with pytest.raises(ValueError, match=r"(?s)layer 'blocks.9'.*did you mean.*Available layers: \['blocks'"):
        LayerTap(bb, "blocks.9")
    with pytest.raises(ValueError, match="pooling='cls' needs"):
        pool_features(out, "cls")

    vit = resolve_backbone(*models["hf_vit"])
    tokens = LayerTap(vit, "layers.0")(torch.zeros((2, 3, 32, 32)))
    assert tuple(tokens.shape) == (2, 17, 32)  # 16 patches + CLS
    torch.testing.assert_close(pool_features(tokens, "cls"), tokens[:, 0])
    torch.testing.assert_close(pool_features(tokens, "auto"), tokens.mean(1))
    torch.testing.assert_close(pool_features(tokens, "max"), tokens.amax(1))


def test_layer_tap_stops_the_forward_pass():
    bb = resolve_backbone("small-cnn", seed=0)
    ran = []
    handle = bb.module.blocks[3].register_forward_hook(lambda *a: ran.append(1))
    LayerTap(bb, "blocks.1")(torch.zeros((1, 3, 64, 64)))
    handle.remove()
    assert ran == []


# ---------------------------------------------------------------------------
# Contrastive loss
# ---------------------------------------------------------------------------


def test_infonce_rewards_alignment():
    torch.manual_seed(0)
    loss = SymmetricInfoNCE()
    text = torch.randn(16, 8)
    with torch.no_grad():
        aligned = float(loss(text * 3.0, text))
        shuffled = float(loss(text[torch.randperm(16)], text))
        # A temperature near 0 makes the loss of embeddings with no
        # relation to the text about log(batch size).
        loss.logit_scale.fill_(-5.0)
        chance = float(loss(torch.randn(16, 8), text))
    assert aligned < 0.01 < shuffled
    assert chance == pytest.approx(math.log(16), abs=0.05)


def test_infonce_duplicate_texts_are_not_negatives():
    loss = SymmetricInfoNCE()
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # Images 0 and 1 share a text: matching either copy is right.
    with torch.no_grad():
        value = loss(text.clone(), text)
    soft = 0.5 * (2 * math.log(2) / 3) * 2  # each duplicated row has a 1/2-1/2 target
    assert float(value) == pytest.approx(soft, abs=1e-3)


def test_infonce_temperature_is_learnable_and_clamped():
    loss = SymmetricInfoNCE(init_temperature=0.07)
    assert loss.temperature == pytest.approx(0.07)
    text = torch.randn(8, 4)
    loss(text, text).backward()
    assert loss.logit_scale.grad is not None
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)
    assert loss.temperature == pytest.approx(0.01)
