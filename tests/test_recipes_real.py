"""Recipes for many real people: LRS2/LRS3 layout (`prepare lrs2`), speaker tables (`prepare folder --speakers`)
on the shared lrs2/ and lrc_ar/ folders, and 30 fps / 44.1-48 kHz lrc_ar clips resampled to 25 fps / 16 kHz."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mediautil import DATA, tone, write_mp4

from avrep.conventions import CLIP_FRAMES, FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from avrep.data.recipes import load_manifest
from avrep.data.recipes.folder import prepare_folder, read_word_list
from avrep.data.recipes.lrs2 import prepare_lrs2, read_lrs_txt
from avrep.errors import AvrepError

LRS2, LRC = DATA / "lrs2", DATA / "lrc_ar"
needs_lrs2 = pytest.mark.skipif(not LRS2.is_dir(), reason="shared lrs2/ data absent")
needs_lrc = pytest.mark.skipif(not (LRC / "identities.csv").is_file(), reason="shared lrc_ar/ data absent")
TIMED = ["00009", "00016", "00019", "00022", "00024"]  # the shared lrs2 clips with a word timing table


def _clip(path, n=40):
    rng = np.random.default_rng(len(str(path)))
    return write_mp4(path, rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), audio=tone(n / 25))


def _table_words(stem):
    return read_lrs_txt(LRS2 / f"{stem}.txt").words


@needs_lrs2
def test_lrs2_word_clips_real():
    from avrep.io.media import probe

    res = prepare_lrs2(LRS2, level="word", seed=0)
    df = res.manifest
    n_words = sum(len(_table_words(s)) for s in TIMED)
    assert len(df) == n_words == 101 and df["clip_id"].is_unique
    assert sorted(df["utterance"].unique()) == TIMED
    assert sorted(df.attrs["no_timing"]) == sorted(
        str(LRS2 / f"{s}.mp4") for s in ("00001", "00002", "00004", "00006", "00008")
    )
    assert ((df["end_frame"] - df["start_frame"]) == CLIP_FRAMES).all() and (df["start_frame"] >= 0).all()
    n = {s: probe(LRS2 / f"{s}.mp4").n_frames_25 for s in TIMED}
    assert (df["end_frame"] <= df["utterance"].map(n)).all()  # clipped to the video
    centre = (df["word_start"] + df["word_end"]) / 2 * FPS
    free = (df["start_frame"] > 0) & (df["end_frame"] < df["utterance"].map(n))  # not pushed by a video edge
    assert free.sum() > 70 and ((df["start_frame"] + CLIP_FRAMES / 2 - centre)[free].abs() <= 1).all()
    # the word's own frames, relative to the window, sit on its times (±1 frame) unless cut by the window
    fits = (df["word_end"] - df["word_start"]) * FPS < CLIP_FRAMES - 2
    assert fits.sum() == len(df) - 1  # 'classical' (1.41 s) is longer than a window
    assert ((df["start_frame"] + df["word_start_frame"] - df["word_start"] * FPS)[fits].abs() <= 1).all()
    assert ((df["start_frame"] + df["word_end_frame"] - df["word_end"] * FPS)[fits].abs() <= 1).all()
    assert (
        (0 <= df["word_start_frame"])
        & (df["word_start_frame"] < df["word_end_frame"])
        & (df["word_end_frame"] <= CLIP_FRAMES)
    ).all()
    assert res.vocab == sorted(set(res.vocab)) and len(res.vocab) == 73
    assert (df["word_id"] == df["word"].map(res.vocab.index)).all()
    assert df.loc[df["clip_id"] == "00009_0_make", ["word", "transcript"]].iloc[0].tolist() == [
        "make",
        "make apple trees grow like this takes a lot more than clever",
    ]
    assert (df.groupby("speaker")["split"].nunique() == 1).all()  # flat folder: each clip its own speaker
    # a given vocabulary fixes the ids; unknown words keep their rows with word_id -1
    given = prepare_lrs2(LRS2, vocab=["the", "a", "not"], ratios=None, split="train").manifest
    assert set(given["split"]) == {"train"} and (given.loc[given["word"] == "the", "word_id"] == 0).all()
    assert (given.loc[~given["word"].isin(["the", "a", "not"]), "word_id"] == -1).all()
    frequent = prepare_lrs2(LRS2, min_count=3).vocab
    assert frequent and all((df["word"] == w).sum() >= 3 for w in frequent) and len(frequent) < 73


@needs_lrs2
def test_lrs2_utterances_both_and_cli(tmp_path):
    utt = prepare_lrs2(LRS2, level="utterance").manifest
    assert len(utt) == 10 and (utt["word_id"] == -1).all() and (utt["end_frame"] == -1).all()
    assert utt.set_index("clip_id").loc["00006", "transcript"] == "thanks for watching"
    both = prepare_lrs2(LRS2, level="both", seed=3).manifest
    assert len(both) == 111 and both["clip_id"].is_unique
    assert (both.groupby("utterance")["split"].nunique() == 1).all()  # a clip's words and utterance together
    out = tmp_path / "m.parquet"
    r = CliRunner().invoke(
        __import__("avrep.cli", fromlist=["cli"]).cli,
        ["prepare", "lrs2", str(LRS2), "--out", str(out), "--level", "both"],
    )
    assert r.exit_code == 0, r.output
    assert "111 clips" in r.output and "101 word clip(s), 10 utterance(s), vocabulary 73" in r.output
    back = load_manifest(out)
    assert len(back) == 111 and back.attrs["recipe"] == "lrs2" and len(back.attrs["vocab"]) == 73


@needs_lrs2
def test_lrs2_nested_layout_and_speaker_table(tmp_path):
    for show, stems in (("6330311066473698535", TIMED[:3]), ("6331559613336179781", TIMED[3:])):
        d = tmp_path / "main" / show
        d.mkdir(parents=True)
        for s in stems:
            (d / f"{s}.mp4").symlink_to(LRS2 / f"{s}.mp4")
            (d / f"{s}.txt").write_bytes((LRS2 / f"{s}.txt").read_bytes())
    (tmp_path / "test.txt").write_text("6330311066473698535/00009\n")  # LRS2's split lists are not clips
    df = prepare_lrs2(tmp_path, ratios=(0.5, 0, 0.5)).manifest
    assert set(df["speaker"]) == {"6330311066473698535", "6331559613336179781"}
    assert (df.groupby("speaker")["split"].nunique() == 1).all() and df["split"].nunique() == 2
    assert df["path"].str.startswith("main/").all()
    table = tmp_path / "ids.csv"
    table.write_text("clip,identity\n" + "".join(f"{s},p{k % 2}\n" for k, s in enumerate(TIMED)))
    spk = prepare_lrs2(tmp_path, speakers=table, ratios=None).manifest
    first = spk.drop_duplicates("utterance")
    assert dict(zip(first["utterance"].str[-5:], first["speaker"])) == {s: f"p{k % 2}" for k, s in enumerate(TIMED)}


def test_lrs2_malformed_and_missing_txt(tmp_path):
    for s in ("00001", "00002", "00003", "00004"):
        _clip(tmp_path / f"{s}.mp4")
    (tmp_path / "00001.txt").write_text(
        "Text:  HELLO THERE\nConf:  4\n\nWORD START END ASDSCORE\nHELLO 0.10 0.40 5.1\nTHERE 0.40 0.72 6.0\n"
    )
    (tmp_path / "00002.txt").write_text("Conf:  4\n")  # no Text: line
    (tmp_path / "00004.txt").write_text("Text:  HELLO\nConf:  4\n")  # no timing table: utterance only
    df = prepare_lrs2(tmp_path, ratios=None).manifest
    assert df["word"].tolist() == ["hello", "there"] and df["start_frame"].tolist() == [0, 0]
    assert df["end_frame"].tolist() == [29, 29] and df["word_start_frame"].tolist() == [3, 10]
    assert df.attrs["bad_txt"] == [str(tmp_path / "00002.txt")] and df.attrs["no_txt"] == [str(tmp_path / "00003.mp4")]
    assert df.attrs["no_timing"] == [str(tmp_path / "00004.mp4")]
    assert len(prepare_lrs2(tmp_path, level="utterance", ratios=None).manifest) == 2
    (tmp_path / "00001.txt").write_text(
        "Text:  HELLO THERE\nConf:  4\n\nWORD START END ASDSCORE\nHELLO 0.10 0.40 5.1\nTHERE 0.40\n"
    )
    with pytest.raises(AvrepError, match=r"00001\.txt:6: malformed word timing line 'THERE 0.40'") as e:
        prepare_lrs2(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "00001.txt").write_text("Text:  HI\n\nWORD START END ASDSCORE\nHI 0.5 0.2 1.0\n")
    with pytest.raises(AvrepError, match=r"00001\.txt:4: .*START <= END"):
        prepare_lrs2(tmp_path)


def test_folder_speaker_table_errors_and_transcripts(tmp_path):
    root = tmp_path / "corpus"
    for s in ("00001", "00002", "00003"):
        _clip(root / "video" / f"{s}.mp4")
    (root / "words").mkdir()
    (root / "words" / "00001.csv").write_text("word\nمرحبا\nبكم\n", encoding="utf-8")
    table = tmp_path / "ids.csv"
    table.write_text("clip,identity\n00001,anchorA\nvideo/00002,anchorB\n")
    with pytest.raises(AvrepError, match=r"1 of 3 videos .* have no row \(first: video/00003\.mp4\)"):
        prepare_folder(root, speakers=table)
    res = prepare_folder(root, speakers=table, drop_unlisted=True)
    df = res.manifest
    assert df["speaker"].tolist() == ["anchorA", "anchorB"] and df.attrs["unlisted"] == ["video/00003.mp4"]
    assert df["transcript"].tolist()[0] == "مرحبا بكم" and pd.isna(df["transcript"].iloc[1])  # auto words/
    other = tmp_path / "tx"
    other.mkdir()
    (other / "00002.csv").write_text("word\nshukran\n")
    df2 = prepare_folder(root, speakers=table, drop_unlisted=True, transcripts=other).manifest
    assert pd.isna(df2["transcript"].iloc[0]) and df2["transcript"].iloc[1] == "shukran"
    table.write_text("clip,identity\n00001,a\n00001,b\n")
    with pytest.raises(AvrepError, match=r"ids\.csv:3: clip '00001' is listed as both"):
        prepare_folder(root, speakers=table)
    table.write_text("clip,who\n00001,a\n")
    with pytest.raises(AvrepError, match="needs columns clip,identity"):
        prepare_folder(root, speakers=table)
    _clip(root / "more" / "00001.mp4")
    table.write_text("clip,identity\n00001,a\nvideo/00002,b\nvideo/00003,c\n")
    with pytest.raises(AvrepError, match="key those rows by relative path"):
        prepare_folder(root, speakers=table)


@needs_lrc
def test_lrc_ar_identity_disjoint_split():
    ids = pd.read_csv(LRC / "identities.csv", dtype=str)
    res = prepare_folder(LRC, speakers=LRC / "identities.csv", ratios=(0.7, 0.1, 0.2), seed=0)
    df = res.manifest
    assert len(df) == len(ids) == 1597 and df["speaker"].nunique() == ids["identity"].nunique() == 24
    assert (
        df.set_index(df["path"].str[len("video/") : -len(".mp4")])["speaker"].sort_index().tolist()
        == ids.set_index("clip")["identity"].sort_index().tolist()
    )
    assert (df.groupby("speaker")["split"].nunique() == 1).all()  # no identity in two splits
    per_split = df.groupby("split")["speaker"].nunique().to_dict()
    assert per_split == {"train": 17, "val": 2, "test": 5}  # 5/24 = 21% of the identities held out
    assert per_split["test"] / 24 >= 0.2
    for seed in (1, 2):
        other = prepare_folder(LRC, speakers=LRC / "identities.csv", ratios=(0.7, 0.1, 0.2), seed=seed).manifest
        assert (other.groupby("speaker")["split"].nunique() == 1).all()
        assert other.groupby("split")["speaker"].nunique()["test"] >= 0.2 * 24
    # the words/ transcripts beside video/ are found without an option
    assert df["transcript"].notna().all()
    first = df.iloc[0]
    stem = first["path"][len("video/") : -len(".mp4")]
    assert first["transcript"] == read_word_list(LRC / "words" / f"{stem}.csv")


@needs_lrc
@pytest.mark.parametrize("stem", ["00199", "00641", "08461"])  # 30 / 29.97 / 30 fps, 44.1 / 48 / 48 kHz AAC
def test_lrc_ar_30fps_48khz_resampled(stem):
    from avrep.io.media import probe, read_audio
    from avrep.preprocess import process_file

    path = LRC / "video" / f"{stem}.mp4"
    info = probe(path)
    assert abs(info.fps - 30) < 0.1 and info.sample_rate in (44100, 48000)
    wav = read_audio(path)
    # 16 kHz, not the source's 44.1/48 kHz (the AAC track is up to ~0.1 s shorter than the video)
    assert 0.85 * info.duration * SAMPLE_RATE <= len(wav) <= 1.02 * info.duration * SAMPLE_RATE
    pv = process_file(path)
    T = len(pv.mouth)
    assert abs(T - info.duration * FPS) <= 1 and T == info.n_frames_25 < info.n_frames
    assert pv.audio.shape == (T * SAMPLES_PER_FRAME,) and pv.face.shape[0] == T
    assert pv.face_mask.mean() >= 0.9 and np.abs(pv.audio).max() > 0.01
