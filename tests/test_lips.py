"""The lip-geometry stream (avrep.models.lips), the iBUG mirror, and the training augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avrep.conventions import SAMPLE_RATE, SAMPLES_PER_FRAME
from avrep.data.augment import appearance, jitter_landmarks, pitch_shift, voice
from avrep.data.ibug import MIRROR, mirror_landmarks
from avrep.errors import AvrepError
from avrep.models import create_model, get_config
from avrep.models.lips import LIP_FEATURES, lip_geometry

torch.set_num_threads(1)

# a plausible frontal 68-point face (dlib order) in a 200 px frame, mouth closed
_rng0 = np.random.default_rng(0)


def _face_template() -> np.ndarray:
    p = np.zeros((68, 2), np.float32)
    p[0:17, 0] = np.linspace(40, 160, 17)
    p[0:17, 1] = 100 + 60 * np.sin(np.linspace(0, np.pi, 17))
    p[17:27] = np.stack([np.linspace(55, 145, 10), np.full(10, 70)], 1)
    p[27:31] = np.stack([np.full(4, 100), np.linspace(80, 115, 4)], 1)
    p[31:36] = np.stack([np.linspace(88, 112, 5), np.full(5, 120)], 1)
    for i, cx in ((36, 75), (42, 125)):  # eyes: 6 points on an ellipse
        a = np.linspace(0, 2 * np.pi, 7)[:6]
        p[i : i + 6] = np.stack([cx + 10 * np.cos(a), 85 + 4 * np.sin(a)], 1)
    a = np.linspace(np.pi, 3 * np.pi, 13)[:12]  # outer lips
    p[48:60] = np.stack([100 + 25 * np.cos(a), 145 + 10 * np.sin(a)], 1)
    a = np.linspace(np.pi, 3 * np.pi, 9)[:8]  # inner lips
    p[60:68] = np.stack([100 + 15 * np.cos(a), 145 + 3 * np.sin(a)], 1)
    return p


def _talking(openness: np.ndarray, rng: np.random.Generator, person: float = 1.0) -> np.ndarray:
    """[T, 68, 2]: the template with the lower lip dropping by `openness` (0..1) frame by frame, moved by a
    random pose (rotation, scale, translation) and a person-specific resting mouth."""
    base = _face_template()
    base[48:68, 0] = 100 + (base[48:68, 0] - 100) * person  # wider / narrower mouth: another person
    T = len(openness)
    lm = np.repeat(base[None], T, 0)
    lower = [55, 56, 57, 58, 59, 65, 66, 67]
    lm[:, lower, 1] += 12 * openness[:, None]
    ang = rng.uniform(-0.3, 0.3)
    s = rng.uniform(0.6, 1.8)
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
    return ((lm - 100) @ R.T * s + rng.uniform(50, 300, size=2)).astype(np.float32)


def test_geometry_ignores_pose_size_and_resting_mouth():
    rng = np.random.default_rng(1)
    op = np.abs(np.sin(np.linspace(0, 6, 29))).astype(np.float32)
    a = lip_geometry(torch.from_numpy(_talking(op, rng))[None])
    b = lip_geometry(torch.from_numpy(_talking(op, rng))[None])  # another pose and size
    c = lip_geometry(torch.from_numpy(_talking(op, rng, person=1.0))[None])
    assert a.shape == (1, 29, LIP_FEATURES)
    assert torch.allclose(a, b, atol=1e-3) and torch.allclose(a, c, atol=1e-3)
    # ... but it sees the motion: another opening pattern gives other features
    d = lip_geometry(torch.from_numpy(_talking(op[::-1].copy(), rng))[None])
    assert (a - d).abs().max() > 0.5


def test_mirror_is_an_involution_and_maps_left_to_right():
    lm = _face_template()
    mm = mirror_landmarks(mirror_landmarks(lm, 200.0), 200.0)
    assert np.allclose(mm, lm)
    assert MIRROR[36] == 45 and MIRROR[48] == 54 and MIRROR[57] == 57
    m = mirror_landmarks(lm, 200.0)  # the template is symmetric about x = 100 -> mirror about 99.5
    assert np.allclose(m[:, 1], lm[:, 1], atol=1e-3) and np.allclose(m[:, 0], lm[:, 0] - 1.0, atol=0.6)


def test_model_with_geometry_needs_landmarks():
    cfg = get_config("tiny", num_words=5, num_speakers=3, video={"geometry": 16})
    m = create_model(cfg).eval()
    assert m.needs_landmarks
    mouth = torch.randint(0, 256, (1, 29, 96, 96), dtype=torch.uint8)
    with pytest.raises(AvrepError, match="landmarks"):
        m.embed_video(mouth)
    lm = torch.from_numpy(_talking(np.zeros(29, np.float32), np.random.default_rng(0)))[None]
    with torch.no_grad():
        e = m.embed_video(mouth, lm)
        # the geometry branch starts at zero: a fresh model's output does not depend on the landmarks yet
        e2 = m.embed_video(mouth, lm * 1.5 + 7)
    assert torch.allclose(e, e2, atol=1e-5)
    assert not create_model("tiny", num_words=5, num_speakers=3).needs_landmarks


def _sync_batch(rng: np.random.Generator, B: int, T: int = 29):
    """Clips whose only sync cue is in the landmarks: the mouth opens with the audio's loudness; the
    mouth pixels are noise. Every clip is another 'person' (pose, size, resting mouth)."""
    env = np.zeros((B, T), np.float32)
    for b in range(B):
        for _ in range(4):  # syllable-like bursts
            c, w = rng.integers(0, T), rng.integers(2, 5)
            env[b, max(0, c - w) : c + w] = rng.uniform(0.5, 1.0)
    lms = np.stack([_talking(env[b], rng, person=rng.uniform(0.7, 1.3)) for b in range(B)])
    noise = rng.normal(0, 1, (B, T * SAMPLES_PER_FRAME)).astype(np.float32)
    audio = noise * (0.01 + np.repeat(env, SAMPLES_PER_FRAME, 1))
    mouth = rng.integers(0, 256, (B, T, 88, 88), dtype=np.uint8)
    return torch.from_numpy(mouth), torch.from_numpy(audio), torch.from_numpy(lms)


def _train_and_find_offsets(geometry: int) -> tuple[float, float]:
    from avrep.eval.sync_metrics import offset_accuracy, sync_from_features
    from avrep.train.losses import roll_audio, sync_loss

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    m = create_model(get_config("tiny", num_words=2, num_speakers=2, video={"geometry": geometry}))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(60):
        mouth, audio, lms = _sync_batch(rng, 16)
        audio, shift = roll_audio(audio, 29, 4)
        vf, _ = m.encode_video(mouth, lms)
        af, _ = m.encode_audio(audio)
        loss = sync_loss(vf, af, 0.1, shift)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    found, true = [], []
    with torch.no_grad():
        mouth, audio, lms = _sync_batch(np.random.default_rng(99), 24, T=40)  # new people, longer clips
        for b in range(24):
            o = int(rng.integers(-3, 4))
            a = torch.roll(audio[b : b + 1], -o * SAMPLES_PER_FRAME, 1)  # audio leads by o frames
            vf = m.frame_features_video(mouth[b : b + 1], lms[b : b + 1])[0].numpy()
            af = m.frame_features_audio(a)[0].numpy()
            found.append(sync_from_features(vf, af, 5).offset_frames)
            true.append(o)
    acc = offset_accuracy(np.array(found), np.array(true))["exact"]
    best_constant = max(np.mean(np.array(true) == k) for k in range(-5, 6))  # always answering one offset
    return acc, float(best_constant)


def test_geometry_stream_learns_sync_that_pixels_cannot_see():
    """A tiny model trained for real: with the geometry stream it finds the offsets of people it never saw
    (the cue is only in the landmarks); without it, far less."""
    with_geom, constant = _train_and_find_offsets(16)
    pixels_only, _ = _train_and_find_offsets(0)
    # the pixel-only model still picks up a little (edge effects of its windows), far from the geometry's
    assert with_geom >= 0.6 and with_geom >= constant + 0.3, (with_geom, constant)
    assert with_geom >= pixels_only + 0.25, (with_geom, pixels_only)


def test_voice_augmentation_keeps_timing_and_length():
    rng = np.random.default_rng(0)
    T = 29
    env = np.zeros(T * SAMPLES_PER_FRAME, np.float32)
    env[10 * SAMPLES_PER_FRAME : 14 * SAMPLES_PER_FRAME] = 1.0
    t = np.arange(env.size) / SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 180 * t) * env).astype(np.float32)
    for seed in range(6):
        y = voice(wave, np.random.default_rng(seed))
        assert y.shape == wave.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
        e = (y.reshape(T, -1) ** 2).mean(1)
        assert int(np.argmax(e)) in range(10, 14), (seed, np.argmax(e))  # the loud frames stay where they were
    assert np.array_equal(voice(wave, np.random.default_rng(3)), voice(wave, np.random.default_rng(3)))
    assert np.array_equal(voice(np.zeros(640, np.float32), rng), np.zeros(640, np.float32))  # silence stays silent


def test_pitch_shift_moves_pitch_not_time():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    y = pitch_shift(wave, 3.0)
    assert y.shape == wave.shape
    spec = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
    f = np.fft.rfftfreq(len(y) - 4000, 1 / SAMPLE_RATE)[np.argmax(spec)]
    assert abs(f - 200 * 2 ** (3 / 12)) < 6, f


def test_appearance_and_landmark_jitter_are_seeded_and_keep_shapes():
    m = np.random.default_rng(0).integers(0, 256, (29, 96, 96), dtype=np.uint8)
    a1, a2 = appearance(m, np.random.default_rng(5)), appearance(m, np.random.default_rng(5))
    assert a1.shape == m.shape and a1.dtype == np.uint8 and np.array_equal(a1, a2)
    assert any(not np.array_equal(appearance(m, np.random.default_rng(s)), m) for s in range(4))
    lm = np.repeat(_face_template()[None], 29, 0)
    j = jitter_landmarks(lm, np.random.default_rng(0))
    iod = 50.0
    assert j.shape == lm.shape and 0 < np.abs(j - lm).mean() < 0.02 * iod


def _shifted_windows(rng: np.random.Generator, B: int, W: int, K: int):
    """Clips of W + 2K frames (another 'person' each); video window at K, audio window at K + k (real
    content on both sides) -> landmarks [B, W, 68, 2], audio [B, W*640], offsets k [B]."""
    mouth, audio, lms = _sync_batch(rng, B, T=W + 2 * K)
    k = rng.integers(-K, K + 1, B)
    a = torch.stack([audio[b, (K + k[b]) * SAMPLES_PER_FRAME : (K + k[b] + W) * SAMPLES_PER_FRAME] for b in range(B)])
    return lms[:, K : K + W], a, torch.from_numpy(k)


def test_sync_head_learns_offsets_of_new_people_from_geometry():
    """The dedicated sync head, trained for real on windows whose audio starts k frames away (so knowing
    "where in the window" is no help), finds the offsets of people it never saw."""
    from avrep.eval.sync_metrics import offset_accuracy, sync_from_features
    from avrep.models.config import SyncHeadConfig
    from avrep.models.sync_head import SyncHead
    from avrep.train.losses import offset_infonce

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = SyncHead(SyncHeadConfig(hidden=32, out=16))
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        lm, a, k = _shifted_windows(rng, 16, 17, 6)
        loss = offset_infonce(head.video_frames(lm), head.audio_frames(a), k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    head.eval()
    found, true = [], []
    with torch.no_grad():
        lm, a, k = _shifted_windows(np.random.default_rng(99), 40, 21, 5)  # new people, other lengths
        for b in range(40):
            vf = head.video_frames(lm[b : b + 1])[0].numpy()
            af = head.audio_frames(a[b : b + 1])[0].numpy()
            found.append(sync_from_features(vf, af, 5).offset_frames)
            true.append(int(k[b]))
    acc = offset_accuracy(np.array(found), np.array(true))["exact"]
    constant = max(np.mean(np.array(true) == c) for c in range(-5, 6))
    assert acc >= 0.6 and acc >= constant + 0.3, (acc, constant)


def test_offset_infonce_targets_follow_the_offset():
    from avrep.train.losses import offset_infonce

    T, D = 12, 8
    base = torch.nn.functional.normalize(torch.randn(1, T + 6, D), dim=-1)
    v = base[:, 3 : 3 + T]
    for k in (-3, 0, 2):
        a = base[:, 3 + k : 3 + k + T]  # audio window k frames later: video t = audio t - k
        right = offset_infonce(v, a, torch.tensor([k]), 0.05)
        wrong = offset_infonce(v, a, torch.tensor([k + 1]), 0.05)
        assert right < 0.05 and wrong > 5 * right, (k, right, wrong)


def test_davs_with_a_sync_head_routes_sync_features_and_round_trips():
    cfg = get_config("tiny", num_words=5, num_speakers=3)
    cfg["sync_head"] = {"hidden": 16, "out": 8}
    m = create_model(cfg).eval()
    assert m.sync_needs_landmarks and not m.needs_landmarks and m.sync_head is not None  # embeddings need none
    mouth = torch.randint(0, 256, (2, 20, 96, 96), dtype=torch.uint8)
    lm = torch.from_numpy(np.stack([_talking(np.zeros(20, np.float32), np.random.default_rng(i)) for i in range(2)]))
    wave = torch.randn(2, 20 * SAMPLES_PER_FRAME)
    with torch.no_grad():
        sv, sa = m.sync_frames_video(mouth, lm), m.sync_frames_audio(wave)
        fv = m.frame_features_video(mouth)
    assert sv.shape == (2, 20, 8) and sa.shape == (2, 20, 8) and fv.shape[-1] != 8
    with pytest.raises(ValueError, match="landmarks"):
        m.sync_frames_video(mouth)
    m2 = create_model(cfg).eval()
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(m2.sync_frames_audio(wave), sa)
    # a model without a head reads the word encoders' frame features, as before
    plain = create_model(get_config("tiny", num_words=5, num_speakers=3)).eval()
    with torch.no_grad():
        assert torch.equal(plain.sync_frames_video(mouth), plain.frame_features_video(mouth))
