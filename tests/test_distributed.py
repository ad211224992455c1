"""Ray backend on a local two-node cluster (head + one worker node): preprocess and embed the tiny corpus
with one task killed mid-way; the outputs equal the local backend's."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from test_store_compact import assert_same_store  # noqa: E402

from avrep.preprocess import PreprocessConfig, preprocess  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False},
    )
    c.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def test_ray_preprocess_and_embed_survive_a_killed_task(cluster, tiny_corpus, tmp_path, monkeypatch):
    from avrep.data.recipes.synth import prepare_synth
    from avrep.embed_job import embed_store
    from avrep.index.store import open_embeddings
    from avrep.models.pretrained import resolve_checkpoint

    assert len(ray.nodes()) == 2
    m = tmp_path / "manifest.parquet"
    prepare_synth(tiny_corpus).write(m)
    cfg = PreprocessConfig(landmarks="true", shard_size=4)
    local = preprocess(m, tmp_path / "local", config=cfg, progress=False, limit=16)
    monkeypatch.setenv("AVREP_RAY_FAIL_ONCE", str(tmp_path / "chaos"))
    dist = preprocess(m, tmp_path / "ray", config=cfg, progress=False, limit=16, backend="ray")
    assert (tmp_path / "chaos" / "preprocess.failed-once").exists()  # a worker died and its task was retried
    assert (dist.n_ok, dist.n_failed, dist.n_shards) == (local.n_ok, local.n_failed, 4)
    assert_same_store(tmp_path / "ray", tmp_path / "local")
    again = preprocess(m, tmp_path / "ray", config=cfg, progress=False, limit=16, backend="ray")
    assert again.n_shards_skipped == 4  # done shards are skipped on a re-run

    ck = resolve_checkpoint(None)
    kw = dict(modality="video", chunk_size=4, batch_size=4, progress=False, device="cpu")
    embed_store(tmp_path / "local", ck, out=tmp_path / "emb_local", **kw)
    embed_store(tmp_path / "local", ck, out=tmp_path / "emb_ray", backend="ray", **kw)
    assert (tmp_path / "chaos" / "embed.failed-once").exists()
    a, b = open_embeddings(tmp_path / "emb_local"), open_embeddings(tmp_path / "emb_ray")
    np.testing.assert_allclose(a.vectors(), b.vectors(), atol=1e-5)
    assert a.metadata().equals(b.metadata())
