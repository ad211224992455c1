"""espeak-ng speech synthesis through ctypes, with sample-exact word and phoneme timings.

espeak-ng (shipped by `espeakng-loader`) runs in synchronous mode: `espeak_Synth` calls our
callback with 22,050 Hz int16 buffers and event arrays (WORD, PHONEME, END, ...) whose `sample`
field is the exact sample index in the utterance. We resample to the requested rate (16 kHz by
default) and convert every event position with the same ratio.

espeak keeps global state and is not thread-safe, so every call holds one process-wide lock;
the library is initialised once per process (corpus workers are processes).
"""
from __future__ import annotations

import ctypes
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avrep.errors import AvrepError

# --- speak_lib.h (espeak-ng 1.52) -----------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakCHARS_UTF8 = 1
espeakENDPAUSE = 0x1000
POS_CHARACTER = 1
espeakRATE, espeakVOLUME, espeakPITCH, espeakRANGE, espeakPUNCTUATION, espeakCAPITALS, espeakWORDGAP = (
    1, 2, 3, 4, 5, 6, 7)
EE_OK = 0
(EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_MARK, EVENT_PLAY, EVENT_END,
 EVENT_MSG_TERMINATED, EVENT_PHONEME, EVENT_SAMPLERATE) = range(9)

ESPEAK_SAMPLE_RATE = 22050  # espeak-ng's native output rate; checked against espeak_Initialize


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT: 40 bytes on 64-bit (the pointer and the union are 8-byte aligned)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input text
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at 22,050 Hz
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))

# English language variants shipped in espeak-ng-data/lang/gmw and voice variants in voices/!v.
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = ("m1", "f2", "m3", "f4")
PAUSE_PHONEMES = frozenset({"_", "_:", "_!", "_^_", "_;_", "_|", "||", "|"})


@dataclass(frozen=True)
class Speech:
    """One synthesised utterance. Positions are in samples at `sample_rate`, sorted, end-exclusive."""

    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    words: list[tuple[str, int, int]]  # (word as written, start, end)
    phonemes: list[tuple[str, int, int]]  # (espeak phoneme mnemonic, start, end), pauses included
    voice: str = ""
    text: str = ""
    word_phonemes: list[list[str]] = field(default_factory=list)  # non-pause phonemes per word

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def phonemes_in(self, start: int, end: int) -> list[tuple[str, int, int]]:
        """Phonemes (pauses excluded) whose start lies in [start, end)."""
        return [p for p in self.phonemes if start <= p[1] < end and p[0] not in PAUSE_PHONEMES]


class _Engine:
    """The process's espeak-ng instance. Use only while holding `_LOCK`."""

    def __init__(self) -> None:
        import espeakng_loader

        lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise AvrepError(f"{lib_path}: cannot load espeak-ng ({exc})") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                     ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                     espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT)
        if rate != ESPEAK_SAMPLE_RATE:
            raise AvrepError(f"{data_path}: espeak-ng initialisation failed (returned {rate})")
        self.lib = lib
        self.data_path = Path(data_path)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, n: int, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while True:
            ev = events[i]
            if ev.type == EVENT_LIST_TERMINATED:
                break
            raw = bytes(ev.id.string) if ev.type == EVENT_PHONEME else b""
            self._events.append((ev.type, ev.sample, ev.text_position, ev.length, raw))
            i += 1
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise AvrepError(f"unknown espeak voice {voice!r} (see avrep.synth.speech.list_voices())")
        # Set every parameter on every call so earlier calls cannot leak into this one.
        for param, value in ((espeakRATE, rate), (espeakPITCH, pitch), (espeakRANGE, pitch_range),
                             (espeakVOLUME, 100), (espeakWORDGAP, 0), (espeakPUNCTUATION, 0),
                             (espeakCAPITALS, 0)):
            self.lib.espeak_SetParameter(param, value, 0)
        self._chunks, self._events = [], []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
        if err != EE_OK:
            raise AvrepError(f"espeak-ng failed on {text!r} with voice {voice!r} (error {err})")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events, self._chunks, self._events = self._events, [], []
        return audio, events


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None
_ENGINE_PID: int | None = None


def _engine() -> _Engine:
    """The per-process engine (a forked child inherits a valid synchronous-mode state)."""
    global _ENGINE, _ENGINE_PID
    if _ENGINE is None:
        _ENGINE, _ENGINE_PID = _Engine(), os.getpid()
    return _ENGINE


def list_voices() -> list[str]:
    """English voices as `<language>+<variant>`, accent-major in a fixed order (32 voices).

    Only combinations whose language and variant files ship with espeakng-loader are listed.
    """
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    langs = {p.name.lower() for p in (data / "lang" / "gmw").iterdir()}
    variants = {p.name for p in (data / "voices" / "!v").iterdir()}
    return [f"{a}+{v}" for a in ACCENTS if a in langs for v in VARIANTS if v in variants]


def _decode_phoneme(raw: bytes) -> str:
    # id.string holds the mnemonic packed in up to 8 bytes, NUL-padded.
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def synthesize(text: str, voice: str, rate: int = 175, pitch: int = 50, sample_rate: int = 16000,
               pitch_range: int = 50) -> Speech:
    """Speak `text` with espeak-ng voice `voice` (e.g. "en-us+m1"); words/phonemes in output samples.

    rate: words per minute (80-450); pitch, pitch_range: 0-99 (espeak's scale, 50 = voice default).
    Deterministic: the same arguments give identical audio bytes.
    """
    if not isinstance(text, str) or not text.strip():
        raise AvrepError("synthesize: empty text")
    if not isinstance(voice, str) or not voice.strip() or "\0" in voice:
        raise AvrepError(f"unknown espeak voice {voice!r}")
    if not 80 <= rate <= 450:
        raise AvrepError(f"synthesize: rate {rate} outside 80-450 words per minute")
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        if not 0 <= value <= 99:
            raise AvrepError(f"synthesize: {name} {value} outside 0-99")
    if sample_rate <= 0:
        raise AvrepError(f"synthesize: bad sample rate {sample_rate}")
    with _LOCK:
        raw, events = _engine().synth(text, voice, rate, pitch, pitch_range)
    if raw.size == 0:
        raise AvrepError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
    n_raw = len(raw)
    audio = raw.astype(np.float32) / 32768.0
    if sample_rate != ESPEAK_SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(sample_rate, ESPEAK_SAMPLE_RATE)
        audio = resample_poly(audio, sample_rate // g, ESPEAK_SAMPLE_RATE // g).astype(np.float32)
        np.clip(audio, -1.0, 1.0, out=audio)
    n_out = len(audio)

    def conv(s: int) -> int:
        return min(max(int(round(s * sample_rate / ESPEAK_SAMPLE_RATE)), 0), n_out)

    # Phonemes: each ends where the next starts; the last ends at the end of the audio.
    ph_raw = [(_decode_phoneme(raw_id), s) for typ, s, _, _, raw_id in events if typ == EVENT_PHONEME]
    ph_starts = [min(max(s, 0), n_raw) for _, s in ph_raw]
    phonemes: list[tuple[str, int, int]] = []
    for i, (name, _) in enumerate(ph_raw):
        end = ph_starts[i + 1] if i + 1 < len(ph_raw) else n_raw
        phonemes.append((name, conv(ph_starts[i]), conv(end)))
    phonemes.sort(key=lambda p: p[1])

    # Words: start at the WORD event; end at the next word's start or at the end of the word's
    # last non-pause phoneme, whichever comes first.
    w_raw = sorted((min(max(s, 0), n_raw), pos, length)
                   for typ, s, pos, length, _ in events if typ == EVENT_WORD)
    words: list[tuple[str, int, int]] = []
    word_phonemes: list[list[str]] = []
    for i, (s, pos, length) in enumerate(w_raw):
        start = conv(s)
        nxt = conv(w_raw[i + 1][0]) if i + 1 < len(w_raw) else n_out
        own = [p for p in phonemes if start <= p[1] < nxt and p[0] not in PAUSE_PHONEMES]
        end = min(nxt, own[-1][2]) if own else nxt
        word = text[pos - 1:pos - 1 + length] if pos >= 1 else ""
        words.append((word, start, max(end, start)))
        word_phonemes.append([p[0] for p in own])
    return Speech(audio=audio, sample_rate=sample_rate, words=words, phonemes=phonemes, voice=voice,
                  text=text, word_phonemes=word_phonemes)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator, kind: str = "white") -> np.ndarray:
    """Return `audio` plus white or pink noise at exactly `snr_db` (mean power over the clip).

    If the mix would clip, signal and noise are scaled down together, which keeps the SNR exact.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise AvrepError(f"add_noise: expected a non-empty mono waveform, got shape {x.shape}")
    p_signal = float(np.mean(x * x))
    if p_signal <= 0:
        raise AvrepError("add_noise: silent audio has no defined SNR")
    if kind == "white":
        noise = rng.standard_normal(x.size)
    elif kind == "pink":
        # 1/f power spectrum: shape white noise by 1/sqrt(f) in the frequency domain (DC removed).
        spec = rng.standard_normal(x.size // 2 + 1) + 1j * rng.standard_normal(x.size // 2 + 1)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f)
        spec[0] = 0.0
        noise = np.fft.irfft(spec, n=x.size)
    else:
        raise AvrepError(f"add_noise: unknown noise kind {kind!r} (white or pink)")
    noise -= noise.mean()
    p_noise = float(np.mean(noise * noise))
    if p_noise <= 0:  # one-sample clip: nothing to shape
        noise, p_noise = np.ones_like(x), 1.0
    noise *= math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    mix = x + noise
    peak = float(np.max(np.abs(mix)))
    if peak > 1.0:
        mix /= peak
    return mix.astype(np.float32)
