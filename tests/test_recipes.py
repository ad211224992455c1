"""Recipes: GRID (real), LRW (tree built from test clips), folder, synthetic corpus layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mediautil import DATA, needs_data, tone, write_mp4

from avrep.data.recipes import load_manifest, write_manifest
from avrep.data.recipes.folder import prepare_folder
from avrep.data.recipes.grid import VOCAB, prepare_grid, read_align, sentence_from_name, word_window
from avrep.data.recipes.lrw import prepare_lrw
from avrep.data.recipes.synth import prepare_synth
from avrep.errors import AvrepError


def test_grid_vocab_and_names():
    assert len(VOCAB) == 51 and VOCAB == sorted(VOCAB)
    assert sentence_from_name("bbaf2n") == ["bin", "blue", "at", "f", "two", "now"]
    assert sentence_from_name("readme") is None


def test_align_crlf_silence_and_frames(tmp_path):
    p = tmp_path / "x.align"
    p.write_bytes(b"0 23750 sil\r\n23750 29500 bin\r\n29500 30000 sp\r\n30000 34000 blue\r\n34000 74500 sil\r\n")
    assert read_align(p) == [(24, 30, "bin"), (30, 34, "blue")]  # value / 1000 = frame index
    assert word_window(24, 30, 75) == (12, 41)
    assert word_window(0, 4, 75) == (0, 29)  # clamped inside the video
    assert word_window(70, 75, 75) == (46, 75)


@needs_data
def test_grid_s1_word_manifest():
    df = prepare_grid(DATA / "grid_s1", seed=0).manifest
    assert len(df) == 4800 and df["clip_id"].is_unique
    assert set(df["word"]) == set(VOCAB) and (df["word_id"] == df["word"].map(VOCAB.index)).all()
    assert (df.groupby("sentence")["split"].nunique() == 1).all()  # no sentence in two splits
    frac = df.drop_duplicates("sentence")["split"].value_counts(normalize=True)
    assert abs(frac["train"] - 0.8) < 0.02 and abs(frac["test"] - 0.1) < 0.02
    assert ((df["end_frame"] - df["start_frame"]) == 29).all() and (df["start_frame"] >= 0).all()
    assert (df["end_frame"] <= 75).all()
    assert (df["word_start_frame"] < df["word_end_frame"]).all() and (df["word_end_frame"] <= 29).all()
    again = prepare_grid(DATA / "grid_s1", seed=0).manifest
    assert again["split"].tolist() == df["split"].tolist()
    other = prepare_grid(DATA / "grid_s1", seed=1).manifest
    assert other["split"].tolist() != df["split"].tolist()


@needs_data
def test_grid_swwp2s_align_and_sentence_level(tmp_path):
    df = prepare_grid(DATA / "grid").manifest  # only swwp2s has an .align
    assert df["word"].tolist() == ["set", "white", "with", "p", "two", "soon"]
    words = read_align(DATA / "grid" / "swwp2s.align")
    r = df.iloc[0]
    assert r["start_frame"] + r["word_start_frame"] == words[0][0]
    sent = prepare_grid(DATA / "grid", level="sentence").manifest
    assert len(sent) == 5 and sent["transcript"].iloc[0] == "bin blue at f two now"
    out = write_manifest(sent, tmp_path / "m.parquet", DATA / "grid", recipe="grid", vocab=VOCAB)
    back = load_manifest(out)
    assert back.attrs["vocab"] == VOCAB and all(p.startswith(str(DATA.resolve())) for p in back["path"])


@needs_data
def test_grid_zenodo_layout_and_swapped_alignments(tmp_path):
    for spk in ("s3", "s7"):
        (tmp_path / spk).mkdir()
        (tmp_path / "alignments" / spk).mkdir(parents=True)
    (tmp_path / "s3" / "swwp2s.mpg").symlink_to(DATA / "grid" / "swwp2s.mpg")
    (tmp_path / "alignments" / "s3" / "swwp2s.align").write_bytes((DATA / "grid" / "swwp2s.align").read_bytes())
    (tmp_path / "s7" / "bbaf2n.mpg").symlink_to(DATA / "grid" / "bbaf2n.mpg")
    # a swapped alignment (other sentence's words) must be detected, not trusted
    (tmp_path / "alignments" / "s7" / "bbaf2n.align").write_bytes((DATA / "grid" / "swwp2s.align").read_bytes())
    df = prepare_grid(tmp_path).manifest
    assert set(df["speaker"]) == {"s3"} and len(df) == 6
    assert len(df.attrs["mismatched"]) == 1


def _clip(path, n=29):
    rng = np.random.default_rng(len(str(path)))
    return write_mp4(path, rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), audio=tone(n / 25))


def test_lrw_tree(tmp_path):
    for w in ("ABOUT", "WORLD"):
        for split in ("train", "val", "test"):
            d = tmp_path / w / split
            d.mkdir(parents=True)
            for k in (1, 2):
                _clip(d / f"{w}_{k:05d}.mp4")
                (d / f"{w}_{k:05d}.txt").write_text(f"Text:  {w}\nConf:  5\n\nDuration: 0.40 seconds\n")
    df, vocab = prepare_lrw(tmp_path)
    assert vocab == ["about", "world"] and len(df) == 12
    assert set(df["split"]) == {"train", "val", "test"}
    assert (df["word_end_frame"] - df["word_start_frame"] == 10).all()
    assert (df["word_start_frame"] == 9).all()  # 10-frame word centred in 29 frames
    bad = tmp_path / "ABOUT" / "test" / "ABOUT_00001.txt"
    bad.write_text("Text:  WORLD\n")
    with pytest.raises(AvrepError, match="folder"):
        prepare_lrw(tmp_path)


def test_folder_with_transcripts(tmp_path):
    _clip(tmp_path / "a.mp4")
    (tmp_path / "a.txt").write_text("Text:  IT'S THAT SIMPLE\n")
    (tmp_path / "p2").mkdir()
    _clip(tmp_path / "p2" / "b.mp4")
    (tmp_path / "notes.md").write_text("not a video")
    df = prepare_folder(tmp_path).manifest
    assert df["transcript"].iloc[0] == "IT'S THAT SIMPLE" and pd.isna(df["transcript"].iloc[1])
    assert df["speaker"].tolist() == ["a", "p2"] and set(df["split"]) == {"test"}
    with pytest.raises(AvrepError, match="no videos"):
        prepare_folder(tmp_path / "p2" / "..", exts=(".webm",))


def test_synth_layout(tmp_path):
    rows = []
    (tmp_path / "landmarks").mkdir()
    for i, split in enumerate(["train", "test"]):
        cid = f"c{i:03d}"
        (tmp_path / "clips" / split).mkdir(parents=True)
        _clip(tmp_path / "clips" / split / f"{cid}.mp4")
        np.save(tmp_path / "landmarks" / f"{cid}.npy", np.zeros((29, 68, 2), np.float32))
        rows.append(
            dict(
                clip_id=cid,
                path=f"clips/{split}/{cid}.mp4",
                word="hello",
                word_id=3,
                voice="en",
                voice_id=0,
                identity_id=i,
                split=split,
                word_start_frame=9,
                word_end_frame=20,
                text="say hello again",
                n_frames=29,
                width=32,
                height=32,
            )
        )
    pd.DataFrame(rows).to_parquet(tmp_path / "manifest.parquet")
    (tmp_path / "vocab.json").write_text(json.dumps({"words": ["a", "b", "c", "hello"]}))
    df, vocab = prepare_synth(tmp_path)
    assert vocab[3] == "hello" and df["speaker"].tolist() == ["id0000", "id0001"]
    out = write_manifest(df, tmp_path / "m.parquet", tmp_path, recipe="synth", vocab=vocab)
    back = load_manifest(out)
    assert back["landmarks_path"].iloc[0] == str(tmp_path / "landmarks" / "c000.npy")
