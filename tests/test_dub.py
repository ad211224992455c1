"""`avrep dub` (issue 24) and the generator's one forward path (issue 25), with the shipped generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def shipped():
    from avrep.models.loading import load_generator
    from avrep.models.pretrained import resolve_generator

    G, davs, _ = load_generator(resolve_generator(None, quiet=True))
    return G, davs


def test_apps_decode_through_the_training_forward(shipped):
    """generate_frames (the apps) gives exactly the frames of the forward training calls, G(ref, speech, pose),
    for the same conditioning: one path, with pose frames (dubbing, training) and without (one-shot)."""
    from avrep.apps.generate import generate_frames, to_face_size

    G, davs = shipped
    rng = np.random.default_rng(0)
    T = 20
    ref = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    pose = rng.integers(0, 256, (T, 128, 128, 3), dtype=np.uint8)
    wave = torch.from_numpy((rng.standard_normal(T * 640) * 0.1).astype(np.float32))[None]
    with torch.no_grad():
        sp = davs.frame_features_audio(wave)
        cond = G.condition(sp)[0]
        ref_t = torch.from_numpy(ref.transpose(2, 0, 1))[None]
        for p in (None, pose):
            p_t = None if p is None else torch.from_numpy(p.transpose(0, 3, 1, 2))[None]
            y = to_face_size(G(ref_t, sp, p_t)[0])
            want = (y.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).numpy()
            got = generate_frames(G, ref, cond, batch=T, progress=False, pose=p)
            assert np.array_equal(got, want)
    # batches are independent: 7 frames at a time gives the same frames (CPU conv kernels may pick another
    # algorithm for another batch size, so a pixel may round one grey level the other way)
    b7 = generate_frames(G, ref, cond, batch=7, progress=False, pose=pose)
    assert b7.shape == got.shape and int(np.abs(b7.astype(int) - got.astype(int)).max()) <= 1


def test_length_rule_cut_or_ping_pong():
    from avrep.apps.dub import source_frames

    assert source_frames(3, 10).tolist() == [0, 1, 2]  # longer video: cut at the audio's end
    assert source_frames(9, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]  # shorter: forward, backward, ...
    assert source_frames(3, 1).tolist() == [0, 0, 0]  # a still: held


@pytest.fixture(scope="module")
def grid_pair(shared_data):
    video, audio = shared_data / "grid" / "bbaf2n.mpg", shared_data / "grid" / "lbax4n.mpg"
    if not (video.exists() and audio.exists()):
        pytest.skip("GRID other-speaker clips absent")
    return video, audio


@pytest.fixture(scope="module")
def dubbed(grid_pair, shipped, tmp_path_factory):
    """A GRID speaker the generator never saw (bbaf2n) dubbed with another clip's speech (lbax4n)."""
    from avrep.apps.dub import dub_video

    video, audio = grid_pair
    out = tmp_path_factory.mktemp("dub") / "dubbed.mp4"
    res = dub_video(video, audio, out, device="cpu", progress=False, model=shipped, chunk=64)
    return out, res


def test_dub_real_clip_keeps_upper_face_and_follows_new_audio(grid_pair, dubbed, shipped):
    from avrep.apps.agreement import stream_features
    from avrep.apps.dub import face_crops, track_face
    from avrep.conventions import SAMPLE_RATE, SAMPLES_PER_FRAME
    from avrep.eval.sync_metrics import sync_from_features
    from avrep.io import media
    from avrep.models.generator import face_to_mouth_roi

    G, davs = shipped
    video, audio = grid_pair
    out, res = dubbed
    wav = media.read_audio(audio)
    n = int(np.ceil(len(wav) / SAMPLES_PER_FRAME))
    frames = media.read_video(out).frames
    assert res["frames"] == n and len(frames) == n  # as long as the audio
    assert abs(len(media.read_audio(out)) - n * SAMPLES_PER_FRAME) < 0.05 * SAMPLE_RATE
    src = media.read_video(video).frames[:n]
    tr = track_face(video)
    co, ci = face_crops(frames, tr.transforms[:n]), face_crops(src, tr.transforms[:n])
    upper = np.abs(co[:, :48].astype(np.float32) - ci[:, :48]).mean()  # eyes, brows: only re-encoding noise
    mouth = np.abs(co[:, 80:120, 32:96].astype(np.float32) - ci[:, 80:120, 32:96]).mean()
    assert upper < 4.0, upper
    assert mouth > 2 * upper, (mouth, upper)

    def lips(c: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255
        roi = face_to_mouth_roi(x, torch.from_numpy(tr.mouth_centres[:n])).round().clamp(0, 255).byte().numpy()
        return stream_features(davs, roi, True)

    new = stream_features(davs, media.fit_audio(wav, n), False)
    old = stream_features(davs, media.fit_audio(media.read_audio(video), n), False)
    v_dub, v_src = lips(co), lips(ci)
    d = {  # avrep-sync distance (1 - cosine) at offset 0
        k: sync_from_features(v, a, 7).dists[7]
        for k, (v, a) in {"dub_new": (v_dub, new), "dub_old": (v_dub, old), "src_new": (v_src, new)}.items()
    }
    assert d["dub_new"] < d["dub_old"] - 0.1, d  # the mouth moves with the new audio, not the old
    assert d["dub_new"] < d["src_new"] - 0.1, d  # ... better than the original mouth does


def test_dub_bytes_do_not_depend_on_chunk_size(grid_pair, dubbed, shipped, tmp_path):
    from avrep.apps.dub import dub_video

    video, audio = grid_pair
    out, _ = dubbed  # chunk 64
    small = tmp_path / "small.mp4"
    dub_video(video, audio, small, device="cpu", progress=False, model=shipped, chunk=16)
    assert small.read_bytes() == out.read_bytes()


def test_face_track_does_not_depend_on_block_size(grid_pair):
    """The analysis passes decode `block` frames at a time; detection key frames, box interpolation and
    smoothing are over the whole video, so the track is the same for any block size."""
    from avrep.apps.dub import track_face

    a, b = track_face(grid_pair[0], block=16), track_face(grid_pair[0], block=1000)
    assert a.n_frames == b.n_frames == 75 and a.face.all()
    assert np.array_equal(a.transforms, b.transforms) and np.array_equal(a.landmarks, b.landmarks)


def test_dub_cli_bad_input_one_line_exit_1(grid_pair, tmp_path, capsys):
    from avrep.cli import main
    from avrep.io.encode import write_mp4, write_wav

    video, audio = grid_pair
    rng = np.random.default_rng(0)
    noface = tmp_path / "noface.mp4"
    write_mp4(noface, rng.integers(0, 256, (20, 96, 96, 3), dtype=np.uint8), np.zeros(20 * 640, np.float32))
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000, np.float32))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    out = tmp_path / "out.mp4"
    cases = {
        "no face found": [str(noface), str(audio)],
        "no speech found": [str(video), str(silent)],
        "not a readable media file": [str(junk), str(audio)],
        "file not found": [str(tmp_path / "missing.mp4"), str(audio)],
    }
    for reason, args in cases.items():
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["dub", *args, "-o", str(out), "-q", "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 1, (reason, err)
        assert len(err.splitlines()) == 1 and reason in err and args[0 if "speech" not in reason else 1] in err, err
        assert not out.exists()


def test_dub_audio_longer_and_shorter_than_the_video(grid_pair, shipped, tmp_path):
    """Output as long as the audio: a 1.5 s sound track cuts the 3 s video, a 6 s one plays it forward then
    backward (frame 75 + k shows source frame 73 - k)."""
    from avrep.apps.dub import dub_video
    from avrep.io import media
    from avrep.io.encode import write_wav

    video, audio = grid_pair
    wav = media.read_audio(audio)
    src = media.read_video(video).frames.astype(np.float32)
    assert len(src) == 75
    for name, a in (("short", wav[:24000]), ("long", np.concatenate([wav, wav]))):
        n = -(-len(a) // 640)
        wp, out = tmp_path / f"{name}.wav", tmp_path / f"{name}.mp4"
        write_wav(wp, a)
        res = dub_video(video, wp, out, device="cpu", progress=False, model=shipped)
        frames = media.read_video(out).frames.astype(np.float32)
        assert res["frames"] == len(frames) == n
        assert res["length_rule"] == ("cut" if n < 75 else "ping-pong")
        top = slice(0, 96)  # above the face's mouth: dubbing leaves it as the source frame
        if n > 75:
            ts = list(range(80, 145, 4))
            best = [int(np.argmin([np.abs(frames[t, top] - f[top]).mean() for f in src])) for t in ts]
            hits = np.mean([abs(b - (148 - t)) <= 1 for b, t in zip(best, ts)])
            assert hits >= 0.8, list(zip(ts, best))  # the source frame each output frame shows: 148 - t
        else:
            assert np.abs(frames[:, top] - src[:n, top]).mean() < 3.0
