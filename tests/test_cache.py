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
