"""Viseme map coverage, articulation tracks and homophene statistics (real espeak)."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest

from avrep.errors import AvrepError
from avrep.synth import speech, visemes
from avrep.synth.visemes import (
    ARTICULATORS,
    PHONEME_VISEMES,
    TARGETS,
    VISEMES,
    articulation_track,
    homophene_groups,
    phoneme_to_viseme,
    phoneme_visemes,
    viseme_key,
    visual_ceiling,
    word_visemes,
)

JAW, SPREAD, ROUND, TEETH, TONGUE = range(5)
CARRIER = "Say the word {w} again."


def _vocab() -> list[str]:
    return resources.files("avrep.data").joinpath("words.txt").read_text().split("\n")[:-1]


def test_vocabulary_file():
    words = _vocab()
    assert len(words) >= 500 and len(set(words)) == len(words)
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)


def test_first_10_and_50_words_are_visually_distinct():
    words = _vocab()
    assert visual_ceiling(words[:10]) == 1.0
    assert visual_ceiling(words[:50]) == 1.0
    assert len({viseme_key(word_visemes(w))[0] for w in words[:10]}) >= 6  # varied first shapes


def test_table_shapes():
    assert len(VISEMES) == 13 and set(TARGETS) == set(VISEMES)
    assert all(0.0 <= x <= 1.0 for t in TARGETS.values() for x in t)
    assert all(v in VISEMES for parts in PHONEME_VISEMES.values() for v in parts)
    assert ARTICULATORS == ("jaw", "spread", "round", "teeth", "tongue")
    assert TARGETS["bilabial"][JAW] == 0.0 and TARGETS["labiodental"][TEETH] > 0.7
    assert TARGETS["dental"][TONGUE] > 0.7 and TARGETS["open"][JAW] > 0.8
    assert TARGETS["rounded_close"][ROUND] > 0.9 and TARGETS["close_front"][SPREAD] > 0.8


def test_every_phoneme_emitted_for_the_vocabulary_is_mapped():
    """All 500 words in every English accent (in carrier phrases); the table maps each name directly."""
    words = _vocab()
    seen: set[str] = set()
    accents = speech.ACCENTS
    for i, accent in enumerate(accents):
        voice = f"{accent}+{speech.VARIANTS[i % len(speech.VARIANTS)]}"
        for k in range(0, len(words), 50):
            text = ". ".join(CARRIER.format(w=w) for w in words[k : k + 50])
            seen.update(p for p, _, _ in speech.synthesize(text, voice).phonemes)
    missing = sorted(p for p in seen if p not in PHONEME_VISEMES)
    assert not missing, f"unmapped espeak phonemes: {missing}"
    assert {"p", "b", "m", "f", "v", "T", "D", "S", "tS", "u:", "aI"} <= seen


def test_unknown_phoneme_is_an_error_and_modifiers_fall_back():
    with pytest.raises(AvrepError, match="no viseme"):
        phoneme_visemes("QQ9")
    assert phoneme_visemes("'a") == ("open",)  # stress marks ignored
    assert phoneme_visemes("0") == ("rounded_open",) and phoneme_visemes("0", "en-us+m1") == ("open",)
    assert phoneme_to_viseme("aI") == "open close_front"


def _frames_inside(sp, names, min_ms=40.0, margin_ms=5.0, fps=25):
    """Frames whose centre lies >= margin_ms inside a phoneme of `names` lasting >= min_ms."""
    spf, m = sp.sample_rate / fps, margin_ms / 1000 * sp.sample_rate
    out = []
    for p, s, e in sp.phonemes:
        if p in names and (e - s) >= min_ms / 1000 * sp.sample_rate:
            out += [f for f in range(int(s // spf), int(e // spf) + 1) if s + m <= (f + 0.5) * spf < e - m]
    return out


def _middle_frames(sp, names, min_ms=60.0, fps=25):
    """For each phoneme of `names` lasting >= min_ms, the frame whose centre is nearest its middle."""
    spf = sp.sample_rate / fps
    return [
        int(round((s + e) / 2 / spf - 0.5))
        for p, s, e in sp.phonemes
        if p in names and (e - s) >= min_ms / 1000 * sp.sample_rate
    ]


@pytest.mark.parametrize("voice", ["en-us+m1", "en-gb-x-rp+f4"])
def test_articulation_track_follows_the_phonemes(voice):
    sp = speech.synthesize("Bob met a farmer, bought the thick map, and saw father.", voice, rate=150)
    n = int(np.ceil(len(sp.audio) / 640)) + 5
    track = articulation_track(sp.phonemes, n, voice=voice)
    assert track.shape == (n, 5) and track.dtype == np.float32
    assert track.min() >= 0 and track.max() <= 1
    bil = _frames_inside(sp, {"b", "m", "p"})
    opn = _middle_frames(sp, {"A:", "aa", "a"}, min_ms=70)
    lab = _middle_frames(sp, {"f"}, min_ms=50)
    den = _middle_frames(sp, {"T", "D"}, min_ms=50)
    assert len(bil) >= 4 and len(opn) >= 2 and lab and den
    assert track[bil, JAW].max() < 0.1, "lips closed for bilabials"
    assert track[bil, TEETH].max() < 0.08
    assert track[opn, JAW].min() > 0.5, "mouth open for open vowels"
    assert track[lab, TEETH].min() > 0.5, "upper teeth on the lower lip for f"
    assert track[den, TONGUE].max() > 0.5, "tongue visible for th"
    # continuous motion: sampled every 4 ms, no articulator moves more than 0.2 per step
    fine = articulation_track(sp.phonemes, len(sp.audio) // 64, fps=250, voice=voice)
    assert np.abs(np.diff(fine, axis=0)).max() < 0.2
    # after the speech: relaxed, closed mouth
    assert np.allclose(track[-1], TARGETS["sil"], atol=0.02)


def test_articulation_track_offset_shifts_frames():
    sp = speech.synthesize("a happy puppy", "en-us+m3")
    full = articulation_track(sp.phonemes, 30)
    shifted = articulation_track(sp.phonemes, 25, offset_samples=5 * 640)
    np.testing.assert_allclose(shifted, full[5:30], atol=1e-6)
    before = articulation_track(sp.phonemes, 3, offset_samples=-10 * 640)  # clip starts before audio
    np.testing.assert_allclose(before, np.tile(TARGETS["sil"], (3, 1)), atol=0.02)
    assert articulation_track([], 4).shape == (4, 5)


def test_rounded_vowels_round_and_spread_vowels_spread():
    sp = speech.synthesize("we saw two cheese moons", "en-us+m1", rate=140)
    track = articulation_track(sp.phonemes, int(np.ceil(len(sp.audio) / 640)), voice="en-us")
    rnd = _middle_frames(sp, {"u:"}, min_ms=60)
    spr = _middle_frames(sp, {"i:"}, min_ms=60)
    assert rnd and spr
    assert track[rnd, ROUND].min() > 0.6 and track[spr, SPREAD].min() > 0.6
    assert track[rnd, SPREAD].max() < track[spr, SPREAD].min()


def test_homophenes():
    assert word_visemes("pat") == ["bilabial", "open", "alveolar"]
    groups = homophene_groups(["pat", "bat", "mat", "fat", "vat", "cheese", "sheep"])
    assert ["pat", "bat", "mat"] in groups and ["fat", "vat"] in groups
    assert visual_ceiling(["pat", "bat", "mat", "fish"]) == 0.5
    assert visual_ceiling(["pat", "pat", "fish"]) == 1.0  # duplicates count once
    words = _vocab()
    for n in (200, 500):
        c = visual_ceiling(words[:n])
        assert 0.0 < c <= 1.0
    assert visual_ceiling(words[:500]) < 1.0  # the full vocabulary has real homophenes


def test_word_visemes_cached_and_errors():
    visemes._word_visemes_cached.cache_clear()
    a = word_visemes("orange")
    b = word_visemes("orange")
    assert a == b and visemes._word_visemes_cached.cache_info().hits >= 1
    with pytest.raises(AvrepError):
        word_visemes("  ")
    with pytest.raises(AvrepError):
        visual_ceiling([])
    with pytest.raises(AvrepError):
        word_visemes("hello", voice="xx-nope")
