"""One LLM-VEM training step and one short fit, run alike in one process or under ``torchrun``.

``python -m skvem.testing.ddp OUT_DIR`` in one process, and
``torchrun --nproc_per_node=2 -m skvem.testing.ddp OUT_DIR`` on two CPU
processes (``gloo``), write the same files when data parallelism is right:
``grads.pt`` (loss and every parameter's gradient of one global batch) and
``fit.pt`` (the weights and history after a short :func:`train_aligned`).
``tests/test_distributed.py`` compares them; ``benchmarks/bench_ddp.py``
times the fit.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch

N_IMAGES, N_VOXELS, TEXT_DIM, IMAGE_SIZE = 22, 12, 8, 16


def problem(seed=0, n_images=N_IMAGES, image_size=IMAGE_SIZE):
    """Random images, fMRI and text targets (the same in every process)."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n_images, image_size, image_size, 3)).astype(np.uint8)
    fmri = rng.randn(n_images, N_VOXELS).astype(np.float32)
    text = rng.randn(n_images, TEXT_DIM).astype(np.float32)
    # Two identical descriptions: duplicates must be found across ranks too.
    text[5] = text[1]
    return images, fmri, text


def config(epochs=2, batch_size=8, **overrides):
    from skvem.vision.training import TrainingConfig

    settings = dict(
        n_components=4, epochs=epochs, frozen_epochs=1, batch_size=batch_size, lr=1e-3,
        backbone_lr_scale=1.0, weight_decay=1e-4, warmup_fraction=0.1, validation_fraction=None,
        patience=None, alignment_weight=1.0, seed=0, device="cpu", dtype="float32",
    )
    settings.update(overrides)
    return TrainingConfig(**settings)


def one_step_gradients():
    """Loss and gradients of one global batch of 7 images (uneven shares on 2 ranks)."""
    from skvem._utils.distributed import distributed_context, local_share
    from skvem.images import as_imageset
    from skvem.vision._aligned_net import AlignedNet, FMRITargets
    from skvem.vision._pixels import PixelStore
    from skvem.vision._trainer import Trainer, TrainingData
    from skvem.vision.backbones import resolve_backbone

    images, fmri, text = problem()
    context = distributed_context(torch.device("cpu"))
    torch.manual_seed(0)
    bb = resolve_backbone("small-cnn", None, image_size=IMAGE_SIZE, seed=0)
    targets = FMRITargets.fit(fmri, 4, 0)
    net = AlignedNet(bb.module, 256, 4, TEXT_DIM)
    store = PixelStore(as_imageset(images), bb.preprocess)
    data = TrainingData(
        train_pixels=store, val_pixels=None, targets=targets,
        T_train=torch.as_tensor(targets.targets(fmri)), T_val=None, Z_val=None,
        text_train=torch.as_tensor(text), text_val=None,
    )
    # Trainer takes a resolved config (what train_aligned makes of the user's).
    cfg = replace(config(), device=torch.device("cpu"), dtype=torch.float32)
    trainer = Trainer(net, cfg, bb.preprocess, data, context=context)
    net.train()
    trainer.model = trainer._wrap()
    batch = np.array([0, 1, 2, 5, 9, 13, 20])
    share = local_share(batch, context)
    x = bb.preprocess.normalize(next(store.batches([share])))
    vox, con, _ = trainer._losses(x, None, torch.as_tensor(share), n_global=len(batch))
    loss = vox + cfg.alignment_weight * con
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in net.named_parameters() if p.grad is not None}
    return {"contrastive": float(con.detach()), "grads": grads, "world_size": context.world_size}


def short_fit(epochs=2, n_images=N_IMAGES, image_size=IMAGE_SIZE, batch_size=8):
    """Weights, history and wall time of a short :func:`train_aligned`."""
    from skvem.images import as_imageset
    from skvem.vision.training import train_aligned

    images, fmri, text = problem(n_images=n_images, image_size=image_size)
    start = time.perf_counter()
    result = train_aligned(as_imageset(images), fmri, text, backbone="small-cnn", pretrained=None,
                           image_size=image_size, config=config(epochs=epochs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
    return {"state": state, "history": result.history, "seconds": seconds}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0]
    mode = argv[1] if len(argv) > 1 else "all"
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    results = {}
    if mode in ("all", "grads"):
        results["grads"] = one_step_gradients()
    if mode in ("all", "fit"):
        results["fit"] = short_fit()
    if mode == "bench":
        results["bench"] = short_fit(epochs=int(argv[2]), n_images=int(argv[3]), image_size=32,
                                     batch_size=int(argv[4]))
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        for name, value in results.items():
            torch.save(value, os.path.join(out, f"{name}.pt"))
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
