"""espeak-ng speech through ctypes: voices, determinism, word/phoneme timings, noise (real espeak)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from avrep.errors import AvrepError
from avrep.synth.speech import PAUSE_PHONEMES, Speech, add_noise, list_voices, synthesize

PHRASE = "Say the word pumpkin again."


def _md5(a: np.ndarray) -> str:
    return hashlib.md5(a.tobytes()).hexdigest()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if len(x) else 0.0


def test_voices_listed_distinct_and_all_load():
    voices = list_voices()
    assert len(voices) >= 20 and len(set(voices)) == len(voices)
    assert voices == list_voices()  # fixed order
    assert {v.split("+")[0] for v in voices[:7]} == {v.split("+")[0] for v in voices}  # 7 accents first
    lengths = {}
    for v in voices:
        sp = synthesize("hello there", v)
        assert sp.audio.dtype == np.float32 and sp.audio.ndim == 1 and sp.sample_rate == 16000
        assert 0.3 < sp.duration < 3.0 and np.abs(sp.audio).max() <= 1.0 and _rms(sp.audio) > 0.01
        assert [w for w, _, _ in sp.words] == ["hello", "there"]
        lengths[v] = _md5(sp.audio)
    assert len(set(lengths.values())) == len(voices), "every voice sounds different"


def test_same_arguments_same_bytes_even_after_other_calls():
    voices = list_voices()
    first = {v: _md5(synthesize(PHRASE, v).audio) for v in voices[:6]}
    synthesize("Something else, entirely different?", voices[3], rate=120, pitch=80, pitch_range=10)
    synthesize("More", voices[0], rate=300, sample_rate=22050)
    again = {v: _md5(synthesize(PHRASE, v).audio) for v in reversed(voices[:6])}
    assert first == again
    assert _md5(synthesize(PHRASE, voices[0], pitch=60).audio) != first[voices[0]]


def test_deterministic_across_processes():
    voice = list_voices()[5]
    code = (
        "import hashlib; from avrep.synth.speech import synthesize; "
        f"print(hashlib.md5(synthesize({PHRASE!r}, {voice!r}, rate=160).audio.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == _md5(synthesize(PHRASE, voice, rate=160).audio)


@pytest.mark.parametrize("voice", ["en-us+m1", "en-gb-x-rp+f4", "en-029+f1"])
def test_word_and_phoneme_spans_match_the_audio(voice):
    sp = synthesize(PHRASE, voice)
    n = len(sp.audio)
    assert [w for w, _, _ in sp.words] == ["Say", "the", "word", "pumpkin", "again"]
    prev_end = 0
    for _, s, e in sp.words:
        assert prev_end <= s < e <= n
        assert _rms(sp.audio[s:e]) > 0.02, "speech energy inside every word span"
        prev_end = e
    # phonemes: sorted, contiguous, inside the audio, and every word's phonemes inside the word
    starts = [s for _, s, _ in sp.phonemes]
    assert starts == sorted(starts)
    for (_, _, e0), (_, s1, _) in zip(sp.phonemes, sp.phonemes[1:]):
        assert e0 == s1
    assert all(0 <= s < e <= n for _, s, e in sp.phonemes)
    (_, w0, w1) = sp.words[3]
    inner = [p for p, s, e in sp.phonemes if s >= w0 and e <= w1 and p not in PAUSE_PHONEMES]
    assert inner == sp.word_phonemes[3]
    assert inner[:4] == ["p", "V", "m", "p"] and inner[-1] == "n"  # the vowels vary by accent
    assert sp.phonemes_in(w0, w1)[0][0] == "p"


def test_phoneme_timings_are_acoustically_right():
    """Sibilants are noisy (high zero-crossing rate), vowels voiced; stop closures are silent."""
    sp = synthesize("a happy puppy sees six fish", "en-us+m3")

    def zcr(x):
        return float(np.mean(np.abs(np.diff(np.signbit(x).astype(np.int8)))))

    fric = [zcr(sp.audio[s:e]) for p, s, e in sp.phonemes if p in ("s", "S")]
    vowel = [zcr(sp.audio[s:e]) for p, s, e in sp.phonemes if p in ("a", "i", "V", "I", "i:")]
    assert len(fric) >= 4 and len(vowel) >= 4
    assert np.median(fric) > 2.5 * np.median(vowel)
    # a stop's span starts with its closure: the first third is much quieter than the next vowel
    for i, (p, s, e) in enumerate(sp.phonemes[:-1]):
        if p == "p":
            nxt = sp.phonemes[i + 1]
            assert _rms(sp.audio[s : s + (e - s) // 3]) < 0.1 * _rms(sp.audio[nxt[1] : nxt[2]])


def test_rate_and_sample_rate_scale_the_timings():
    slow = synthesize(PHRASE, "en-us+m1", rate=120)
    fast = synthesize(PHRASE, "en-us+m1", rate=300)
    assert slow.duration > 1.6 * fast.duration
    assert (slow.words[3][2] - slow.words[3][1]) > 1.6 * (fast.words[3][2] - fast.words[3][1])
    hi = synthesize(PHRASE, "en-us+m1", sample_rate=22050)
    lo = synthesize(PHRASE, "en-us+m1", sample_rate=16000)
    assert abs(len(hi.audio) * 16000 / 22050 - len(lo.audio)) <= 1
    for (w, s, e), (w2, s2, e2) in zip(hi.words, lo.words):
        assert w == w2 and abs(s * 16000 / 22050 - s2) <= 1 and abs(e * 16000 / 22050 - e2) <= 1


def test_pause_between_sentences_is_silent():
    sp = synthesize("Hello. World.", "en+m3")
    (_, _, e0), (_, s1, _) = sp.words
    assert s1 - e0 > 0.1 * sp.sample_rate
    assert _rms(sp.audio[e0 + 400 : s1 - 400]) < 0.1 * _rms(sp.audio[:e0])


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"text": "hello", "voice": "xx-nope"}, "unknown espeak voice"),
        ({"text": "hello", "voice": "en-us+nope"}, "unknown espeak voice"),
        ({"text": "hello", "voice": "en-us+../m1"}, "unknown espeak voice"),
        ({"text": "", "voice": "en-us"}, "empty text"),
        ({"text": "   ", "voice": "en-us"}, "empty text"),
        ({"text": "hello", "voice": "en-us", "rate": 10}, "rate"),
        ({"text": "hello", "voice": "en-us", "pitch": 120}, "pitch"),
    ],
)
def test_errors_are_one_line_avrep_errors(kwargs, fragment):
    with pytest.raises(AvrepError) as exc:
        synthesize(**kwargs)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_speech_is_a_dataclass_with_sorted_words():
    sp = synthesize("one two three", "en-us")
    assert isinstance(sp, Speech) and sp.voice == "en-us" and sp.text == "one two three"
    assert [w for w, _, _ in sp.words] == ["one", "two", "three"]


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_add_noise_exact_snr_and_deterministic(kind):
    clean = synthesize(PHRASE, "en-us+f1").audio
    for snr in (20.0, 5.0, 0.0):
        noisy = add_noise(clean, snr, np.random.default_rng(3), kind)
        assert noisy.dtype == np.float32 and noisy.shape == clean.shape and np.abs(noisy).max() <= 1.0
        noise = noisy.astype(np.float64) - clean
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))
        assert abs(measured - snr) < 1e-3
        assert np.array_equal(noisy, add_noise(clean, snr, np.random.default_rng(3), kind))
    # at -10 dB the mix would clip: it is scaled down, keeping the SNR exact
    loud = add_noise(clean, -10.0, np.random.default_rng(1), kind)
    assert np.abs(loud).max() <= 1.0


def test_pink_noise_has_more_low_than_high_frequency_power():
    rng = np.random.default_rng(0)
    x = np.full(32000, 0.1, np.float32) * np.sin(np.arange(32000) * 0.3).astype(np.float32)
    pink = add_noise(x, -20.0, rng, "pink")  # noise dominates at -20 dB
    white = add_noise(x, -20.0, np.random.default_rng(0), "white")

    def band_ratio(y):
        spec = np.abs(np.fft.rfft(y)) ** 2
        return spec[20:800].sum() / spec[8000:15000].sum()

    assert band_ratio(pink) > 5 * band_ratio(white)


def test_add_noise_errors():
    with pytest.raises(AvrepError):
        add_noise(np.zeros(100, np.float32), 10, np.random.default_rng(0))
    with pytest.raises(AvrepError):
        add_noise(np.ones(100, np.float32) * 0.1, 10, np.random.default_rng(0), kind="brown")
