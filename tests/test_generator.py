"""Talking-face generator: a tiny model trains for real, `avrep generate` works end to end, metrics are right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_sync import synth_run  # noqa: F401  (session fixture: the tiny DAVS run and its store)

from avrep.errors import AvrepError


@pytest.fixture(scope="module")
def gen_data():
    from avrep.train.gen_data import synthetic_clip_arrays

    torch.set_num_threads(1)
    return synthetic_clip_arrays("train", 12, seed=0), synthetic_clip_arrays("val", 4, seed=0)


@pytest.fixture(scope="module")
def gen_run(gen_data, tmp_path_factory) -> Path:
    from avrep.train.gen_data import GenDataset
    from avrep.train.gen_loop import GenTrainArgs, train_generator

    tr, va = gen_data
    out = tmp_path_factory.mktemp("gen") / "run"
    train_generator(
        GenTrainArgs(config="tiny", out=str(out), epochs=5, batch_size=4, lr=2e-3, device="cpu"),
        train_ds=GenDataset(arrays=tr, frames=12, train=True),
        val_ds=GenDataset(arrays=va, train=False),
        progress=False,
    )
    return out


def test_tiny_generator_learns(gen_run):
    log = [json.loads(x) for x in (gen_run / "log.jsonl").read_text().splitlines()]
    assert log[0]["epoch"] == 0 and log[-1]["epoch"] == 5
    # held-out clips (unseen identities), generated from one reference frame + audio only
    assert log[-1]["val_l1"] < 0.6 * log[0]["val_l1"], log
    assert log[-1]["val_psnr"] > log[0]["val_psnr"] + 3, log
    assert log[-1]["train_l1"] < log[1]["train_l1"], log


def test_resume_continues(gen_run, gen_data, tmp_path):
    import shutil

    from avrep.train.gen_data import GenDataset
    from avrep.train.gen_loop import GenTrainArgs, train_generator

    run = tmp_path / "run"
    shutil.copytree(gen_run, run)
    tr, va = gen_data
    with pytest.raises(AvrepError):
        train_generator(
            GenTrainArgs(config="tiny", out=str(run), epochs=6, device="cpu"),
            train_ds=GenDataset(arrays=tr, frames=12),
            progress=False,
        )
    rec = train_generator(
        GenTrainArgs(config="tiny", out=str(run), epochs=6, device="cpu"),
        resume=True,
        train_ds=GenDataset(arrays=tr, frames=12, train=True),
        val_ds=GenDataset(arrays=va, train=False),
        progress=False,
    )
    assert rec["epoch"] == 6 and json.loads((run / "state.json").read_text())["epoch"] == 6


def _faces_in_every_frame(mp4: Path) -> int:
    import cv2

    from avrep.data.landmarks import detect_faces
    from avrep.io.media import read_video

    v = read_video(mp4)
    for f in v.frames:
        assert len(detect_faces(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))) >= 1
    return len(v.frames)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    from avrep.io.encode import write_wav
    from avrep.synth.speech import list_voices, synthesize

    p = tmp_path_factory.mktemp("wav") / "speech.wav"
    write_wav(p, synthesize("hello there, how are you", list_voices()[0]).audio)
    return p


def _cli(args: list[str]) -> None:
    from avrep.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def test_generate_cli_synthetic_face(gen_run, speech_wav, tmp_path, capsys):
    import cv2

    from avrep.io.media import probe
    from avrep.synth.face import FaceRenderer, Identity

    img, _ = FaceRenderer(Identity.sample(12345), 200).render()
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mp4"
    from avrep.cli import main

    main(
        [
            "generate",
            "--face",
            str(face),
            "--audio",
            str(speech_wav),
            "-o",
            str(out),
            "--checkpoint",
            str(gen_run),
            "--quiet",
        ]
    )
    info = probe(out)
    assert info.has_audio and info.has_video and info.width == 200
    n = _faces_in_every_frame(out)
    import soundfile as sf

    assert abs(n - int(np.ceil(sf.info(str(speech_wav)).frames / 640))) <= 1
    # bad inputs: one-line errors, exit code 2
    silent = tmp_path / "silent.wav"
    from avrep.io.encode import write_wav

    write_wav(silent, np.zeros(16000, np.float32))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((160, 160, 3), 120, np.uint8))
    capsys.readouterr()
    for args, msg in (
        ([str(face), str(silent)], "no speech"),
        ([str(blank), str(speech_wav)], "no face"),
        ([str(speech_wav), str(speech_wav)], "not a readable image"),
        ([str(face), str(tmp_path / "missing.wav")], "file not found"),
    ):
        assert (
            _cli(
                [
                    "generate",
                    "--face",
                    args[0],
                    "--audio",
                    args[1],
                    "-o",
                    str(tmp_path / "x.mp4"),
                    "--checkpoint",
                    str(gen_run),
                    "--quiet",
                ]
            )
            == 1
        )
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.mp4").exists()


def test_generate_on_shared_photo(gen_run, speech_wav, tmp_path, shared_data):
    from avrep.apps.generate import generate_video

    photo = shared_data / "faces" / "face1.jpg"
    if not photo.exists():
        pytest.skip("face1.jpg absent")
    res = generate_video(photo, tmp_path / "p.mp4", gen_run, audio=speech_wav, progress=False)
    assert _faces_in_every_frame(tmp_path / "p.mp4") == res["frames"]


def test_sliding_windows_cover_and_blend():
    from avrep.apps.generate import window_starts

    for T in (1, 29, 30, 44, 100, 301):
        s = window_starts(T)
        cov = np.zeros(max(T, 29), int)
        for a in s:
            cov[a : a + 29] += 1
        assert cov[:T].min() >= 1 and s[-1] + 29 == max(T, 29)


def test_metrics():
    from avrep.eval.genmetrics import psnr, ssim, sync_offset

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) > 90
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, b) < 0.99 and 15 < psnr(a, b) < 30
    f = rng.standard_normal((40, 16))
    # audio leads video by 2 frames: video frame t shows audio frame t - 2
    v = np.concatenate([rng.standard_normal((2, 16)), f[:-2]])
    r = sync_offset(v, f)
    assert r["offset_frames"] == 2 and r["confidence"] > 0.3


def test_mouth_roi_matches_store_crop():
    """The differentiable ROI from a face crop sees what the store's mouth ROI sees."""
    from avrep.data.align import crop_clip
    from avrep.models.generator import face_to_mouth_roi
    from avrep.synth.face import Identity, render_sequence
    from avrep.train.gen_data import mouth_centres

    tr = np.tile(np.array([[0.6, 0.2, 0.1, 0.5, 0.2]], np.float32), (3, 1))
    frames, lms = render_sequence(Identity.sample(5), tr, 0)
    crops = crop_clip(frames, lms)
    roi = face_to_mouth_roi(
        torch.from_numpy(crops.face).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(mouth_centres(lms))
    ).numpy()
    err = np.abs(roi[:, 16:80, 16:80] - crops.mouth[:, 16:80, 16:80].astype(np.float32)).mean()
    assert err < 12, err


def test_dubbing_pose_frames_shape_and_errors(gen_run, gen_data):
    """Pose frames (dubbing) go through the encoder per frame; a length mismatch is refused."""
    from avrep.apps.generate import conditioning, generate_frames
    from avrep.models.loading import load_generator

    G, davs, _ = load_generator(gen_run)
    _, va = gen_data
    real = va["face"][0]
    cond = conditioning(G, davs, len(real), audio=va["audio"][0])
    dub = generate_frames(G, real[0], cond, progress=False, pose=real)
    assert dub.shape == real.shape and dub.dtype == np.uint8
    with pytest.raises(ValueError):
        generate_frames(G, real[0], cond, progress=False, pose=real[:3])


def test_dubbing_keeps_pose_frames_upper_face(gen_run, gen_data):
    """Dubbing blends onto the driving frames above the mask line: a change there (darker upper face)
    shows in the output, while one-shot generation keeps the reference's upper face."""
    from avrep.apps.generate import conditioning, generate_frames
    from avrep.models.loading import load_generator

    G, davs, _ = load_generator(gen_run)
    _, va = gen_data
    real = va["face"][1]
    pose = real.copy()
    pose[:, :56] = pose[:, :56] // 2  # rows above the mask line (64) minus a margin for the seam
    cond = conditioning(G, davs, len(real), audio=va["audio"][1])
    dub = generate_frames(G, real[0], cond, progress=False, pose=pose).astype(np.float32)
    one = generate_frames(G, real[0], cond, progress=False).astype(np.float32)
    err_dub = np.abs(dub[:, :56] - pose[:, :56]).mean()
    err_one = np.abs(one[:, :56] - pose[:, :56]).mean()
    assert err_dub < 0.5 * err_one, (err_dub, err_one)


def test_blend_base_and_mouth_box():
    from avrep.models.generator import blend_base, default_mouth_centre, mouth_box_mask

    ref, pose = torch.zeros(2, 3, 64, 64), torch.ones(2, 3, 64, 64)
    b = blend_base(ref, pose)
    assert b[..., :32, :].eq(1).all() and b[..., 32:, :].eq(0).all()
    assert blend_base(ref, None) is ref
    c = torch.from_numpy(default_mouth_centre())[None]
    m = mouth_box_mask(c, 128)[0, 0]
    cy, cx = (int(round(float(v))) for v in c[0].flip(0))
    assert m.shape == (128, 128) and m[cy, cx] > 0.95
    assert m[5, 5] < 1e-3 and m[cy, 5] < 1e-3  # corners and cheeks are outside the box
    assert 0.02 < float(m.mean()) < 0.2  # a mouth-sized share of the face


def test_paste_back_adds_only_the_generated_change():
    """With ref_seen, an unchanged crop leaves the photo exactly as it was (no blur from a low-res
    generator); a change inside the crop shows up in the photo under the mask."""
    from avrep.apps.generate import paste_back

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    A = np.array([[0.8, 0.0, -30.0], [0.0, 0.8, -20.0]])  # photo px -> crop px
    ref_seen = rng.uniform(0, 255, (128, 128, 3)).astype(np.float32)
    same = np.clip(ref_seen + 0.5, 0, 255).astype(np.uint8)[None]
    out = paste_back(photo, same, A, ref_seen=np.floor(ref_seen + 0.5))
    assert np.abs(out[0].astype(int) - photo).max() <= 1
    moved = same.copy()
    moved[0, 80:110, 40:90] = 0  # a dark open mouth
    out2 = paste_back(photo, moved, A, ref_seen=np.floor(ref_seen + 0.5)).astype(int)
    changed = np.abs(out2[0] - photo).sum(-1) > 30
    assert changed.sum() > 500
    ys, xs = np.nonzero(changed)  # crop rows 80-110 -> photo rows (80+20)/0.8 = 125 .. 162
    assert ys.min() >= 115 and ys.max() <= 170, (ys.min(), ys.max())


def _synthetic_face(tmp_path: Path) -> Path:
    import cv2

    from avrep.synth.face import FaceRenderer, Identity

    img, _ = FaceRenderer(Identity.sample(12345), 200).render()
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return face


def test_generate_in_chunks_is_the_same_video(gen_run, speech_wav, tmp_path):
    """Long speech is generated, pasted and encoded chunk by chunk (bounded memory): same bytes as one chunk."""
    from avrep.apps.generate import generate_video

    face = _synthetic_face(tmp_path)
    a = generate_video(face, tmp_path / "a.mp4", gen_run, audio=speech_wav, progress=False, chunk=7)
    b = generate_video(face, tmp_path / "b.mp4", gen_run, audio=speech_wav, progress=False, chunk=10_000)
    assert a["frames"] > 14 and a["frames"] == b["frames"]
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_mp4_writer_leaves_nothing_when_interrupted(tmp_path):
    from avrep.io.encode import Mp4Writer
    from avrep.io.media import read_video

    frames = np.random.default_rng(0).integers(0, 255, (10, 64, 80, 3), dtype=np.uint8)
    with Mp4Writer(tmp_path / "ok.mp4", 80, 64, np.zeros(6400, np.float32)) as w:
        w.write(frames[:4])
        w.write(frames[4:])
    assert len(read_video(tmp_path / "ok.mp4").frames) == 10
    with pytest.raises(RuntimeError):
        with Mp4Writer(tmp_path / "bad.mp4", 80, 64) as w:
            w.write(frames)
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mp4"]  # no partial file, no temp file


def test_train_generator_on_a_store_mixture(synth_run, tmp_path):  # noqa: F811
    """`--data a@w+b@w --epoch-size N`: weighted draws from each store, a run that trains and validates."""
    from avrep.train.gen_loop import _open_gen

    store = synth_run["store"]
    (tmp_path / "other").symlink_to(store, target_is_directory=True)  # a second corpus (same clips, own name)
    spec = f"{store}@0.75+{tmp_path / 'other'}@0.25"
    ds = _open_gen(spec, "train", 8, True, 0)
    ds.epoch_size = 16
    ds.set_epoch(0)
    assert list(ds.counts().values()) == [12, 4]
    it = ds[0]
    assert it["face"].shape == (8, 3, 128, 128) and it["audio"].shape == (8 * 640,)
    out = tmp_path / "g"
    args = ["train-generator", "--config", "tiny", "--data", spec, "--epoch-size", "16", "--epochs", "2"]
    args += ["--batch-size", "4", "--frames", "8", "--davs", str(synth_run["run"]), "--out", str(out)]
    from avrep.cli import main

    main([*args, "--device", "cpu", "--workers", "0", "--quiet"])
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["epoch"] == 2 and log[-1]["step"] == 8 and np.isfinite(log[-1]["train_l1"])
    assert "val_psnr" in log[-1] and json.loads((out / "config.json").read_text())["train"]["data"] == spec
