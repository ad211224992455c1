"""Procedural face renderer: determinism, landmarks, articulation and real dlib detection."""

from __future__ import annotations

import importlib.util
import os
import time

import cv2
import numpy as np
import pytest

from avrep.errors import AvrepError
from avrep.synth.face import FaceRenderer, Identity, blink_track, head_motion, render_sequence

NEUTRAL = np.zeros(5)
OPEN = np.array([1.0, 0.2, 0.0, 0.8, 0.3])


@pytest.fixture(scope="module")
def renderers() -> list[FaceRenderer]:
    return [FaceRenderer(Identity.sample(s)) for s in range(6)]


def test_identity_deterministic_and_varied():
    assert Identity.sample(7) == Identity.sample(7)
    ids = [Identity.sample(s) for s in range(200)]
    assert len(set(ids)) == 200
    # the visible traits vary: hair styles, beards, glasses, skin tones over a wide range
    assert len({i.hair_style for i in ids}) >= 8
    assert {i.beard for i in ids} >= {"none", "full"} and any(i.glasses != "none" for i in ids)
    luma = np.array([0.299 * i.skin[0] + 0.587 * i.skin[1] + 0.114 * i.skin[2] for i in ids])
    assert luma.max() - luma.min() > 0.5


def test_render_deterministic_bytes():
    a = FaceRenderer(Identity.sample(3)).render(OPEN, (2.0, 0.01, -0.02, 1.01), 0.5)
    b = FaceRenderer(Identity.sample(3)).render(OPEN, (2.0, 0.01, -0.02, 1.01), 0.5)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    f1, l1 = render_sequence(Identity.sample(3), np.tile(OPEN * 0.5, (8, 1)), rng_seed=11, size=96)
    f2, l2 = render_sequence(Identity.sample(3), np.tile(OPEN * 0.5, (8, 1)), rng_seed=11, size=96)
    f3, _ = render_sequence(Identity.sample(3), np.tile(OPEN * 0.5, (8, 1)), rng_seed=12, size=96)
    assert f1.tobytes() == f2.tobytes() and l1.tobytes() == l2.tobytes()
    assert f1.tobytes() != f3.tobytes()  # other head motion


def test_identities_look_different(renderers):
    imgs = [r.render(NEUTRAL)[0].astype(np.float32) for r in renderers]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert np.abs(imgs[i] - imgs[j]).mean() > 10


def test_landmarks_inside_and_ordered(renderers):
    rng = np.random.default_rng(0)
    for r in renderers:
        for _ in range(3):
            a = rng.uniform(0, 1, 5)
            img, lm = r.render(
                a, (rng.uniform(-4, 4), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), 1.0), rng.uniform(0, 1)
            )
            assert img.shape == (160, 160, 3) and img.dtype == np.uint8
            assert lm.shape == (68, 2) and lm.dtype == np.float32
            assert (lm >= 0).all() and (lm < 160).all()
            eyes_y, nose_y = lm[36:48, 1].mean(), lm[33, 1]
            mouth_y, chin_y, brow_y = lm[48:68, 1].mean(), lm[8, 1], lm[17:27, 1].mean()
            assert brow_y < eyes_y < nose_y < mouth_y < chin_y
            assert lm[0, 0] < lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0] < lm[16, 0]
            assert lm[48, 0] < lm[51, 0] < lm[54, 0] and lm[60, 0] < lm[62, 0] < lm[64, 0]
            assert lm[51, 1] <= lm[62, 1] + 1e-3 and lm[66, 1] <= lm[57, 1] + 1e-3
            assert lm[62, 1] <= lm[66, 1] + 1e-3


def test_pose_moves_landmarks_with_the_image(renderers):
    r = renderers[0]
    img0, lm0 = r.render(OPEN)
    img1, lm1 = r.render(OPEN, (4.0, 0.03, -0.02, 1.03))
    m0, m1 = r.pose_matrix((0, 0, 0, 1)), r.pose_matrix((4.0, 0.03, -0.02, 1.03))
    a0 = np.vstack([m0, [0, 0, 1]])
    rel = np.vstack([m1, [0, 0, 1]]) @ np.linalg.inv(a0)  # frame(pose0) -> frame(pose1)
    np.testing.assert_allclose(lm0 @ rel[:2, :2].T + rel[:2, 2], lm1, atol=1e-3)
    warped = cv2.warpAffine(img0, rel[:2], (160, 160), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inner = (slice(30, 130), slice(30, 130))  # away from borders: same picture, moved
    assert np.abs(warped[inner].astype(int) - img1[inner].astype(int)).mean() < 6


def test_jaw_opens_mouth_and_moves_chin(renderers):
    for r in renderers[:4]:
        gaps, dark, chin = [], [], []
        for j in (0.0, 0.25, 0.5, 0.75, 1.0):
            img, lm = r.render(np.array([j, 0, 0, 0, 0]))
            gaps.append(lm[66, 1] - lm[62, 1])
            chin.append(lm[8, 1])
            x0, y0 = lm[48:68].min(0).astype(int) - 2
            x1, y1 = lm[48:68].max(0).astype(int) + 3
            gray = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
            dark.append(int((gray < 45).sum()))
        assert gaps[0] < 0.5 and np.all(np.diff(gaps) > 0.5)
        assert np.all(np.diff(chin) > 0.3)
        assert dark[-1] > dark[0] + 40 and dark[2] > dark[0]
        # only the jaw points 4-12 move with the jaw
        a, b = r.render(NEUTRAL)[1], r.render(np.array([1.0, 0, 0, 0, 0]))[1]
        moved = np.flatnonzero(np.abs(a - b).max(1) > 1e-3)
        assert set(moved[moved < 17]) <= set(range(4, 13)) and {5, 8, 11} <= set(moved)
        assert not np.any(np.abs(a - b)[17:48] > 1e-3)


def test_rounding_narrows_and_spread_widens(renderers):
    r = renderers[1]
    width = lambda a: np.ptp(r.render(np.array(a, float))[1][[48, 54], 0])  # noqa: E731
    assert width([0.3, 0, 1, 0, 0]) < width([0.3, 0, 0, 0, 0]) - 2 < width([0.3, 1, 0, 0, 0]) - 3


def test_teeth_and_tongue_are_drawn(renderers):
    r = renderers[2]
    base, lm = r.render(np.array([0.8, 0, 0, 0, 0]))
    teeth, _ = r.render(np.array([0.8, 0, 0, 1, 0]))
    tongue, _ = r.render(np.array([0.8, 0, 0, 0, 1]))
    x0, y0 = lm[60:68].min(0).astype(int)
    x1, y1 = lm[60:68].max(0).astype(int) + 1
    roi = lambda im: im[y0:y1, x0:x1].astype(float)  # noqa: E731
    assert roi(teeth).mean() > roi(base).mean() + 15  # white teeth in the dark cavity
    assert (roi(tongue)[..., 0] - roi(tongue)[..., 2]).mean() > (roi(base)[..., 0] - roi(base)[..., 2]).mean() + 5


def test_blink_closes_eyes_and_static_cache_is_seamless(renderers):
    r = renderers[3]
    _, open_lm = r.render(NEUTRAL, blink=0.0)
    img_c, closed_lm = r.render(NEUTRAL, blink=1.0)
    h_open = (open_lm[41, 1] - open_lm[37, 1]) + (open_lm[47, 1] - open_lm[43, 1])
    h_closed = (closed_lm[41, 1] - closed_lm[37, 1]) + (closed_lm[47, 1] - closed_lm[43, 1])
    assert h_open > 3 and h_closed < 0.25 * h_open
    # the per-frame patches at rest reproduce the cached full render (no seams)
    img, _ = r.render(NEUTRAL)
    full = cv2.warpAffine(
        r._static, r.pose_matrix((0, 0, 0, 1)), (160, 160), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    assert np.abs(img.astype(int) - full.astype(int)).max() <= 3


def test_sequence_motion_and_blinks():
    rng = np.random.default_rng(0)
    poses = head_motion(300, rng)
    assert np.abs(poses[:, 0]).max() <= 4 + 1e-9 and np.abs(poses[:, 1:3]).max() <= 0.03 + 1e-9
    assert np.abs(poses[:, 3] - 1).max() <= 0.03 + 1e-9 and np.abs(np.diff(poses[:, 0])).max() < 1.0  # smooth
    b = blink_track(250, rng)  # 10 s at 25 fps: 2-5 blinks of a few frames
    starts = np.flatnonzero((b[1:] > 0) & (b[:-1] == 0))
    assert 2 <= len(starts) <= 6 and (b > 0.5).sum() <= 3 * len(starts) + 2
    frames, lms = render_sequence(Identity.sample(1), np.zeros((5, 5)), rng_seed=0, size=128)
    assert frames.shape == (5, 128, 128, 3) and lms.shape == (5, 68, 2) and lms.dtype == np.float32


def test_bad_input_raises():
    r = FaceRenderer(Identity.sample(0), size=96)
    with pytest.raises(AvrepError):
        r.render(np.zeros(4))
    with pytest.raises(AvrepError):
        r.render(np.array([np.nan, 0, 0, 0, 0]))
    with pytest.raises(AvrepError):
        r.render(NEUTRAL, (0, 5, 0, 1))  # translation given in pixels instead of a fraction
    with pytest.raises(AvrepError):
        render_sequence(Identity.sample(0), np.zeros((10, 3)), 0)


def test_dlib_detects_rendered_faces():
    dlib = pytest.importorskip("dlib")
    spec = importlib.util.find_spec("face_recognition_models")
    det = dlib.get_frontal_face_detector()
    sp = None
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_68_face_landmarks.dat")
        sp = dlib.shape_predictor(path) if os.path.exists(path) else None
    rng = np.random.default_rng(1)
    hits, errs, t_render = 0, [], []
    states = [NEUTRAL, OPEN, np.array([0.4, 0.5, 0.8, 0.5, 0.0])]
    for s in range(100, 110):
        r = FaceRenderer(Identity.sample(s))
        for a in states:
            pose = (rng.uniform(-4, 4), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(0.97, 1.03))
            t0 = time.perf_counter()
            img, lm = r.render(a, pose, 0.0)
            t_render.append(time.perf_counter() - t0)
            d = det(img, 1)
            if len(d):
                hits += 1
                if sp is not None:
                    sh = sp(img, max(d, key=lambda b: b.area()))
                    p = np.array([[sh.part(i).x, sh.part(i).y] for i in range(68)], float)
                    iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
                    errs.append(np.linalg.norm(p - lm, axis=1).mean() / iod)
    rate = hits / 30
    print(
        f"dlib detection {rate:.2%}, 68-pt NME/IOD {np.mean(errs) if errs else float('nan'):.3f}, "
        f"render {np.mean(t_render) * 1000:.1f} ms/frame"
    )
    assert rate >= 0.9
    if errs:
        assert np.mean(errs) < 0.15  # dlib's landmarks land on the drawn face parts
