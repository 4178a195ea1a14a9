"""Scale-out for real, not mocked: torchrun (gloo, 2 CPU processes), a dask LocalCluster, local Ray."""

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skvem import AlignedImageFeaturizer, VoxelRidgeCV
from skvem._utils.distributed import DistributedContext, distributed_context, local_share, share_sizes


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _run(args, timeout=240):
    proc = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def ddp_outputs(tmp_path_factory):
    """The same step and fit in one process and in two torchrun processes."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    _run([sys.executable, "-m", "skvem.testing.ddp", str(one)])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          "-m", "skvem.testing.ddp", str(two)])

    def load(folder, name):
        return torch.load(folder / f"{name}.pt", weights_only=False)

    return {name: (load(one, name), load(two, name)) for name in ("grads", "fit")}


def test_ddp_gradients_equal_one_process_with_the_global_batch(ddp_outputs):
    one, two = ddp_outputs["grads"]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    # The contrastive loss of the gathered global batch (7 images split 4 + 3)
    # is the one-process loss; a per-rank loss over 3-4 negatives is not.
    assert two["contrastive"] == pytest.approx(one["contrastive"], rel=1e-6)
    assert set(one["grads"]) == set(two["grads"])
    for name, grad in one["grads"].items():
        scale = float(grad.abs().max()) + 1e-12
        assert float((two["grads"][name] - grad).abs().max()) <= 1e-5 * scale, name


def test_ddp_fit_equals_one_process(ddp_outputs):
    one, two = ddp_outputs["fit"]
    for name, value in one["state"].items():
        np.testing.assert_allclose(two["state"][name].float(), value.float(), atol=1e-5, err_msg=name)
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["train_voxel_loss"] == pytest.approx(a["train_voxel_loss"], rel=1e-5)
        assert b["train_contrastive_loss"] == pytest.approx(a["train_contrastive_loss"], rel=1e-5)


def test_not_distributed_outside_a_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed_context() == DistributedContext(rank=0, world_size=1)
    monkeypatch.setenv("WORLD_SIZE", "two")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed_context()


def test_shares_cover_the_batch_once():
    batch = np.arange(7)
    parts = [local_share(batch, DistributedContext(rank=r, world_size=3)) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), batch)
    assert share_sizes(7, DistributedContext(world_size=3)) == [len(p) for p in parts]


# -- cross-validation on joblib backends ---------------------------------------

def _problem():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(36, 16, 16, 3)).astype(np.uint8)
    fmri = images.reshape(36, -1)[:, :6].astype(np.float32) / 255 + 0.1 * rng.randn(36, 6)
    return images, fmri.astype(np.float32)


def _cv_scores(backend=None):
    images, fmri = _problem()
    pipe = make_pipeline(
        AlignedImageFeaturizer(backbone="small-cnn", pretrained=None, image_size=16, n_components=4,
                               epochs=2, batch_size=8, validation_fraction=None, device="cpu",
                               random_state=0),
        VoxelRidgeCV(alphas=(1.0, 100.0), cv=3),
    )
    cv = KFold(3, shuffle=True, random_state=0)
    if backend is None:
        return cross_val_score(pipe, images, fmri, cv=cv, n_jobs=1)
    with joblib.parallel_backend(backend):
        return cross_val_score(pipe, images, fmri, cv=cv, n_jobs=-1)


@pytest.fixture(scope="module")
def one_process_scores():
    return _cv_scores()


def test_cross_val_score_on_dask_equals_one_process(one_process_scores):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        scores = _cv_scores("dask")
    np.testing.assert_allclose(scores, one_process_scores, rtol=1e-5, atol=1e-6)


def test_cross_val_score_on_ray_equals_one_process(one_process_scores):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        scores = _cv_scores("ray")
    finally:
        ray.shutdown()
    np.testing.assert_allclose(scores, one_process_scores, rtol=1e-5, atol=1e-6)


# -- ridge over several GPUs ---------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_ridge_blocks_over_devices_equal_one_solve(backend):
    from skvem.encoding._devices import solve_ridge_cv_on_devices
    from skvem.encoding._ridge_solver import solve_ridge_cv

    rng = np.random.RandomState(0)
    X = rng.randn(80, 12)
    Y = X @ rng.randn(12, 31) + rng.randn(80, 31) * np.logspace(-1, 1, 31)
    cv = KFold(4).split(X)  # one-shot: every block must see the same folds
    one = solve_ridge_cv(X, Y, np.logspace(-2, 4, 7), cv=list(KFold(4).split(X)), backend=backend)
    spread = solve_ridge_cv_on_devices(X, Y, np.logspace(-2, 4, 7), cv=cv, backend=backend,
                                       devices=[None, None, None])
    np.testing.assert_array_equal(spread.best_alphas, one.best_alphas)
    np.testing.assert_allclose(spread.coef, one.coef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spread.intercept, one.intercept, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spread.cv_scores, one.cv_scores, rtol=1e-5)


def test_ridge_uses_every_visible_gpu():
    torch_cuda = pytest.importorskip("himalaya.backend.torch_cuda", exc_type=Exception)
    from skvem.encoding._devices import visible_gpus

    assert visible_gpus(torch_cuda) == list(range(torch.cuda.device_count()))
