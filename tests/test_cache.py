import multiprocessing as mp
import pickle

import pytest

from skvem._utils.cache import DiskCache, clear_cache, default_cache_dir, namespace_key, resolve_cache


def test_put_get_count_clear(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put_many("ns", {"a": "x", "b": b"\x00\x01"})
    cache.put_many("other", {"a": "y"})
    assert cache.get_many("ns", ["a", "b", "c"]) == {"a": "x", "b": b"\x00\x01"}
    assert cache.count("ns") == 2 and cache.count() == 3
    cache.clear("ns")
    assert cache.get_many("ns", ["a"]) == {} and cache.count() == 1
    clear_cache(tmp_path)
    assert cache.count() == 0


def test_many_keys_are_chunked(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put_many("ns", {str(i): str(i) for i in range(2345)})
    assert len(cache.get_many("ns", [str(i) for i in range(3000)])) == 2345


def test_namespace_key_is_order_free_and_distinct():
    assert namespace_key("k", {"a": 1, "b": 2}) == namespace_key("k", {"b": 2, "a": 1})
    assert namespace_key("k", {"a": 1}) != namespace_key("k", {"a": 2})
    assert namespace_key("k", {"a": 1}) != namespace_key("j", {"a": 1})


def test_register_and_list(tmp_path):
    cache = DiskCache(tmp_path)
    cache.register("ns", "captions", {"model": "m"})
    cache.put_many("ns", {"a": "x"})
    assert cache.namespaces() == [("ns", "captions", {"model": "m"}, 1)]


def test_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVEM_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert resolve_cache(None).directory == tmp_path / "env"
    assert resolve_cache(False) is None
    assert resolve_cache(tmp_path / "x").directory == tmp_path / "x"
    with pytest.raises(ValueError, match="cache_dir"):
        resolve_cache(3)


def test_pickles_without_connection(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put_many("ns", {"a": "x"})
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get_many("ns", ["a"]) == {"a": "x"}


def _writer(directory, worker):
    cache = DiskCache(directory)
    for batch in range(20):
        cache.put_many("ns", {f"{worker}-{batch}-{i}": "v" * 50 for i in range(25)})


def test_concurrent_writers(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert DiskCache(tmp_path).count("ns") == 3 * 20 * 25


# ---------------------------------------------------------------------------
# The cache as a dependency that can break (issue 13, item 8)

import os  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from skvem._utils import _cache_faults  # noqa: E402
from skvem._utils import cache as cache_module  # noqa: E402
from skvem._utils.cache import CacheError, CacheLockedError  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_fault_state(monkeypatch):
    """Warn-once and stop-writing state is per process: reset it for every test."""
    monkeypatch.setattr(_cache_faults, "_WARNED", set())
    monkeypatch.setattr(cache_module, "_NO_WRITE", {})


def _filled(tmp_path, n=400):
    cache = DiskCache(tmp_path)
    cache.put_many("ns", {f"k{i}": "v" * 300 for i in range(n)})
    conn = sqlite3.connect(cache.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    cache._close()
    return cache.path


def _damage(path, how):
    data = path.read_bytes()
    if how == "random bytes":
        path.write_bytes(np.random.RandomState(0).bytes(len(data)))
    elif how == "damaged page":
        page = 4096
        middle = len(data) // page // 2 * page
        path.write_bytes(data[:middle] + b"\xff" * page + data[middle + page :])
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "garbage wal":
        path.with_name(path.name + "-wal").write_bytes(np.random.RandomState(1).bytes(8192))


@pytest.mark.parametrize("how", ["random bytes", "damaged page", "truncated"])
def test_a_damaged_cache_is_moved_aside_and_replaced(tmp_path, how):
    path = _filled(tmp_path)
    _damage(path, how)
    cache = DiskCache(tmp_path)
    with pytest.warns(RuntimeWarning, match=rf"{path.name}.*damaged.*moved it to .*corrupt-"):
        found = cache.get_many("ns", [f"k{i}" for i in range(400)])
    assert found == {}
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    cache.put_many("ns", {"new": "x"})  # a working, fresh cache
    assert DiskCache(tmp_path).get_many("ns", ["new"]) == {"new": "x"}


def test_a_garbage_write_ahead_log_is_survived(tmp_path):
    path = _filled(tmp_path)
    _damage(path, "garbage wal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cache = DiskCache(tmp_path)
        found = cache.get_many("ns", ["k0", "k1"])
        cache.put_many("ns", {"new": "x"})
    # sqlite ignores a log whose checksums fail; if it did not, the file was replaced
    assert found in ({"k0": "v" * 300, "k1": "v" * 300}, {})
    assert cache.get_many("ns", ["new"]) == {"new": "x"}


@pytest.mark.parametrize("how", ["random bytes", "truncated"])
def test_clear_cache_works_on_a_broken_file(tmp_path, how):
    path = _filled(tmp_path)
    _damage(path, how)
    clear_cache(tmp_path)
    assert DiskCache(tmp_path).count() == 0
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]  # cleared means gone


def test_captioning_survives_a_damaged_cache(tmp_path):
    from skvem.language.captioning import CaptionTransformer

    def describe(images):
        return ["a caption"] * len(images)

    describe.cache_key = "tests.damaged/v1"
    path = _filled(tmp_path)
    _damage(path, "random bytes")
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.warns(RuntimeWarning, match="damaged"):
        out = CaptionTransformer(model=describe, cache_dir=tmp_path).fit_transform(pixels)
    assert list(out) == ["a caption"] * 2
    assert DiskCache(tmp_path).count() == 1  # the fresh cache holds the new caption


def _read_only(monkeypatch):
    # Tests may run as root, for whom permissions do not bind: decide it here.
    monkeypatch.setattr(_cache_faults, "writable", lambda directory, path: False)


def test_a_read_only_cache_serves_hits_and_warns_once(tmp_path, monkeypatch):
    _filled(tmp_path, n=3)
    _read_only(monkeypatch)
    cache = DiskCache(tmp_path)
    assert cache.get_many("ns", ["k0", "zz"]) == {"k0": "v" * 300}
    assert cache.read_only
    with pytest.warns(RuntimeWarning, match=r"read-only.*computed but not cached") as record:
        cache.put_many("ns", {"zz": "new"})
        cache.register("ns2", "caption", {})
        DiskCache(tmp_path).put_many("ns", {"yy": "new"})
    assert len([w for w in record if "read-only" in str(w.message)]) == 1
    monkeypatch.undo()
    assert DiskCache(tmp_path).count() == 3  # nothing was written
    with pytest.raises(CacheError, match="read-only"):
        _read_only(monkeypatch)
        DiskCache(tmp_path, strict=True).put_many("ns", {"zz": "new"})


def test_a_missing_read_only_cache_computes_everything(tmp_path, monkeypatch):
    _read_only(monkeypatch)
    cache = DiskCache(tmp_path / "never-created")
    assert cache.get_many("ns", ["a"]) == {} and cache.count() == 0
    with pytest.warns(RuntimeWarning, match="read-only"):
        cache.put_many("ns", {"a": "x"})


def test_captioning_with_a_read_only_shared_cache(tmp_path, monkeypatch):
    from skvem.language.captioning import CaptionTransformer

    calls = []

    def describe(images):
        calls.append(len(images))
        return ["a caption"] * len(images)

    describe.cache_key = "tests.read-only/v1"
    pixels = np.random.RandomState(0).randint(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    CaptionTransformer(model=describe, cache_dir=tmp_path).fit_transform(pixels[:2])
    _read_only(monkeypatch)
    with pytest.warns(RuntimeWarning, match="read-only"):
        out = CaptionTransformer(model=describe, cache_dir=tmp_path).fit_transform(pixels)
    assert list(out) == ["a caption"] * 4 and calls == [2, 2]  # hits served, misses computed


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_a_really_read_only_folder(tmp_path):
    _filled(tmp_path, n=3)
    os.chmod(tmp_path / "skvem-cache.sqlite3", 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        cache = DiskCache(tmp_path)
        assert cache.get_many("ns", ["k1"]) == {"k1": "v" * 300}
        with pytest.warns(RuntimeWarning, match="read-only"):
            cache.put_many("ns", {"x": "y"})
    finally:
        os.chmod(tmp_path, 0o755)


_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(30)
"""


@pytest.fixture
def lock_holder(tmp_path):
    path = _filled(tmp_path, n=3)
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_held_write_lock_is_a_bounded_wait_naming_the_holder(tmp_path, monkeypatch, lock_holder):
    monkeypatch.setenv("SKVEM_CACHE_TIMEOUT", "0.3")
    cache = DiskCache(tmp_path)
    assert cache.get_many("ns", ["k2"]) == {"k2": "v" * 300}  # readers are not blocked
    start = time.monotonic()
    pattern = rf"skvem-cache.sqlite3.*stayed locked for 0.3 s.*pid {lock_holder.pid}"
    with pytest.warns(RuntimeWarning, match=pattern):
        cache.put_many("ns", {"new": "x"})
    cache.put_many("ns", {"newer": "x"})  # no second wait: this process stopped writing
    assert time.monotonic() - start < 5
    with pytest.raises(CacheLockedError, match=rf"pid {lock_holder.pid}"):
        DiskCache(tmp_path, strict=True).put_many("ns", {"new": "x"})
    with pytest.raises(CacheLockedError, match="SKVEM_CACHE_TIMEOUT"):
        clear_cache(tmp_path)


def test_the_lock_timeout_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVEM_CACHE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="SKVEM_CACHE_TIMEOUT"):
        DiskCache(tmp_path).count()


def test_a_lone_surrogate_is_refused_naming_the_entry(tmp_path):
    cache = DiskCache(tmp_path)
    with pytest.raises(ValueError, match=r"cache entry 'fp1'.*lone surrogate"):
        cache.put_many("ns", {"fp0": "fine", "fp1": "bad \ud800"})
    assert cache.count() == 0  # nothing of the batch was written
