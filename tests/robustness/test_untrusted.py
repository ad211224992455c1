"""Files avrep did not make: pickles posing as checkpoints are refused (and never unpickled), index
manifests / parquet metadata are validated, manifest paths escaping the dataset root are refused."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avrep.errors import AvrepError
from avrep.testing.robustness import run_cli


class _Payload:
    """Unpickling this would create the marker file: proof that a pickle ran code."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _evil_pickle(path: Path, marker: Path) -> Path:
    p = _Payload()
    p.marker = str(marker)
    path.write_bytes(pickle.dumps({"weights": p}, protocol=4))
    return path


def _evil_torch_save(path: Path, marker: Path) -> Path:
    import torch

    p = _Payload()
    p.marker = str(marker)
    torch.save({"w": torch.zeros(2), "x": p}, str(path))
    return path


@pytest.mark.parametrize("kind", ["pickle", "torch_save"])
def test_pickle_checkpoint_refused_without_running_it(rb_run, tmp_path, kind):
    from avrep.embed import Embedder

    run = tmp_path / "run"
    shutil.copytree(rb_run, run)
    marker = tmp_path / "PWNED"
    (_evil_pickle if kind == "pickle" else _evil_torch_save)(run / "model.safetensors", marker)
    with pytest.raises(AvrepError, match=r"pickle|torch\.save"):
        Embedder.from_checkpoint(run, device="cpu")
    r = run_cli(["lipread", str(tmp_path / "x.mp4"), "-c", str(run), "--device", "cpu"])
    assert r.code == 1 and len(r.error_lines) == 1 and "model.safetensors" in r.error_lines[0]
    assert not marker.exists()


def test_torch_load_weights_only_refuses_code(tmp_path):
    from avrep.security import load_torch_weights

    marker = tmp_path / "PWNED"
    f = _evil_torch_save(tmp_path / "evil.pt", marker)
    with pytest.raises(AvrepError, match="evil.pt"):
        load_torch_weights(f)
    assert not marker.exists()
    import torch

    torch.save({"w": torch.arange(3.0)}, str(tmp_path / "ok.pt"))  # plain tensors still load
    assert load_torch_weights(tmp_path / "ok.pt")["w"].tolist() == [0.0, 1.0, 2.0]


def test_truncated_and_garbage_safetensors(rb_run, tmp_path):
    from avrep.models import load_run

    run = tmp_path / "run"
    shutil.copytree(rb_run, run)
    w = run / "model.safetensors"
    data = w.read_bytes()
    for bad in (data[: len(data) // 2], b"\x00" * 100, b"{" * 64):
        w.write_bytes(bad)
        with pytest.raises(AvrepError, match="model.safetensors"):
            load_run(run)


def test_object_npy_refused(tmp_path):
    from avrep.security import load_npy

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AvrepError, match="obj.npy"):
        load_npy(tmp_path / "obj.npy")
    r = run_cli(["search", str(tmp_path), "--vector", str(tmp_path / "obj.npy")])
    assert r.code == 1 and len(r.error_lines) == 1


def _copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_index_manifest_and_metadata_validated(rb_index, tmp_path):
    from avrep.index import Index

    src = rb_index["video"]
    q = np.random.default_rng(0).standard_normal((1, Index.open(src).dim)).astype(np.float32)
    cases = {
        "dim_string": lambda d: _edit_json(d / "manifest.json", dim="32"),
        "dim_wrong": lambda d: _edit_json(d / "manifest.json", dim=7),
        "modality": lambda d: _edit_json(d / "manifest.json", modality="smell"),
        "metric": lambda d: _edit_json(d / "manifest.json", metric="cosine!"),
        "n_negative": lambda d: _edit_json(d / "manifest.json", n=-1),
        "n_wrong": lambda d: _edit_json(d / "manifest.json", n=999),
        "checkpoint_list": lambda d: _edit_json(d / "manifest.json", checkpoint=["/etc/passwd"]),
        "manifest_array": lambda d: (d / "manifest.json").write_text("[1, 2]"),
        "manifest_garbage": lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe{"),
        "meta_rows": lambda d: pd.read_parquet(d / "metadata.parquet").iloc[:-1].to_parquet(d / "metadata.parquet"),
        "meta_garbage": lambda d: (d / "metadata.parquet").write_bytes(b"PAR1 garbage PAR1"),
        "index_truncated": lambda d: (d / "index.faiss").write_bytes((d / "index.faiss").read_bytes()[:100]),
        "index_garbage": lambda d: (d / "index.faiss").write_bytes(b"\x00" * (d / "index.faiss").stat().st_size),
    }
    for name, damage in cases.items():
        d = _copy_index(src, tmp_path / name)
        damage(d)
        with pytest.raises(AvrepError) as ei:
            Index.open(d).search(q, 3)
        assert str(d) in str(ei.value) and "\n" not in str(ei.value), (name, str(ei.value))
        np.save(tmp_path / "q.npy", q[0])
        r = run_cli(["search", str(d), "--vector", str(tmp_path / "q.npy")])
        assert r.code == 1 and len(r.error_lines) == 1 and "Traceback" not in r.err, (name, r.err)


def test_index_checkpoint_hash_mismatch_refused(rb_index, rb_run, tmp_path, rb_corpus):
    """An index naming a checkpoint whose weights changed since the build refuses media queries."""
    d = _copy_index(rb_index["audio"], tmp_path / "idx")
    run = tmp_path / "run"
    shutil.copytree(rb_run, run)
    _edit_json(d / "manifest.json", checkpoint=str(run))
    w = run / "model.safetensors"
    from safetensors.torch import load_file, save_file

    sd = load_file(str(w))
    k = next(iter(sd))
    sd[k] = sd[k] + 1
    save_file(sd, str(w))
    clip = sorted((rb_corpus / "clips" / "test").glob("*.mp4"))[0]
    r = run_cli(["search", str(d), "--audio", str(clip), "--device", "cpu"])
    assert r.code == 1 and "hash" in r.error_lines[0], r.err


def _edit_json(path: Path, **kw) -> None:
    m = json.loads(path.read_text())
    m.update(kw)
    path.write_text(json.dumps(m))


def _manifest(tmp: Path, paths: list[str], root: Path, **cols) -> Path:
    from avrep.data.recipes import write_manifest

    rows = [
        dict(
            clip_id=f"c{i}",
            path=p,
            word=None,
            word_id=-1,
            transcript=None,
            speaker="s",
            split="test",
            start_frame=0,
            end_frame=-1,
            landmarks_path=None,
        )
        for i, p in enumerate(paths)
    ]
    df = pd.DataFrame(rows)
    for k, v in cols.items():
        df[k] = v
    return write_manifest(df, tmp / "m.parquet", root, recipe="folder")


def test_manifest_paths_escaping_root_refused(rb_corpus, tmp_path):
    from avrep.data.recipes import load_manifest

    good = sorted((rb_corpus / "clips" / "test").glob("*.mp4"))[0]
    inside = str(good.relative_to(rb_corpus))
    outside = tmp_path / "outside.mp4"
    shutil.copy(good, outside)
    for bad in ("../" * 8 + "etc/passwd", str(outside), "clips/../../" + outside.name, "/etc/shadow"):
        m = _manifest(tmp_path, [inside, bad], rb_corpus)
        with pytest.raises(AvrepError, match="outside the dataset root") as ei:
            load_manifest(m)
        assert "m.parquet" in str(ei.value) and ei.value.param == "allow_outside_root"
        r = run_cli(["preprocess", str(m), "--out", str(tmp_path / "s"), "--no-preview"])
        assert r.code == 1 and len(r.error_lines) == 1 and "outside the dataset root" in r.err
        assert "--allow-outside-root" in r.error_lines[0]  # the CLI names the flag
        assert not (tmp_path / "s").exists()  # refused before anything was read or written
    # landmarks_path too
    m = _manifest(tmp_path, [inside], rb_corpus, landmarks_path=["../../../../etc/passwd"])
    with pytest.raises(AvrepError, match="landmarks_path"):
        load_manifest(m)
    # the flag allows a manifest the user trusts
    m = _manifest(tmp_path, [inside, str(outside)], rb_corpus)
    df = load_manifest(m, allow_outside_root=True)
    assert df.path.tolist() == [str(good), str(outside)]
    r = run_cli(["preprocess", str(m), "--out", str(tmp_path / "s2"), "--no-preview", "--allow-outside-root"])
    assert r.code == 0, r.err[-1000:]
    assert len(pd.read_parquet(tmp_path / "s2" / "clips.parquet")) == 2


def test_manifest_types_validated(rb_corpus, tmp_path):
    from avrep.data.recipes import load_manifest

    inside = str(sorted((rb_corpus / "clips" / "test").glob("*.mp4"))[0].relative_to(rb_corpus))
    bad_cols = {"start_frame": ["zero"], "end_frame": [-5], "clip_id": [None], "word_id": [1.5], "path": [42]}
    for col, val in bad_cols.items():
        m = _manifest(tmp_path, [inside], rb_corpus, **{col: val})
        with pytest.raises(AvrepError, match=col):
            load_manifest(m)
    import pyarrow.parquet as pq

    t = pq.read_table(m)
    for meta in (b"[1, 2]", b'{"root": 5}', b"\xff not json"):
        pq.write_table(t.replace_schema_metadata({b"avrep": meta}), tmp_path / "bad_meta.parquet")
        with pytest.raises(AvrepError, match="bad_meta.parquet"):
            load_manifest(tmp_path / "bad_meta.parquet")


def test_damaged_store_refused_by_embed_and_train(rb_store, rb_run, tmp_path):
    st = tmp_path / "store"
    shutil.copytree(rb_store, st)
    clips = pd.read_parquet(st / "clips.parquet")
    for name, df in {
        "negative_offset": clips.assign(offset=-1),
        "float_shard": clips.assign(shard=0.5),
        "no_n_frames": clips.drop(columns=["n_frames"]),
    }.items():
        df.to_parquet(st / "clips.parquet")
        r = run_cli(
            [
                "embed",
                str(st),
                "-c",
                str(rb_run),
                "--modality",
                "video",
                "--out",
                str(tmp_path / name),
                "--device",
                "cpu",
            ]
        )
        assert r.code == 1 and len(r.error_lines) == 1 and "clips.parquet" in r.error_lines[0], (name, r.err[-500:])
    (st / "clips.parquet").write_bytes(b"garbage")
    r = run_cli(
        [
            "train",
            "--config",
            "tiny",
            "--data",
            str(st),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--quiet",
        ]
    )
    assert r.code == 1 and len(r.error_lines) == 1 and "clips.parquet" in r.error_lines[0], r.err[-500:]
