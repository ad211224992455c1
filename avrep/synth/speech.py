"""espeak-ng speech synthesis through ctypes, with sample-exact word and phoneme timings.

espeak-ng (shipped by `espeakng-loader`) runs in synchronous mode: `espeak_Synth` calls our
callback with 22,050 Hz int16 buffers and event arrays (WORD, PHONEME, END, ...) whose `sample`
field is the exact sample index in the utterance. We resample to the requested rate (16 kHz by
default) and convert every event position with the same ratio.

espeak keeps global state and is not thread-safe, so every call holds one process-wide lock;
the library is initialised once per process (corpus workers are processes).
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avrep.conventions import SAMPLE_RATE
from avrep.errors import AvrepError

# --- speak_lib.h (espeak-ng 1.52) -----------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakCHARS_UTF8 = 1
POS_CHARACTER = 1
espeakRATE, espeakVOLUME, espeakPITCH, espeakRANGE, espeakPUNCTUATION, espeakCAPITALS, espeakWORDGAP = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
EE_OK = 0
(
    EVENT_LIST_TERMINATED,
    EVENT_WORD,
    EVENT_SENTENCE,
    EVENT_MARK,
    EVENT_PLAY,
    EVENT_END,
    EVENT_MSG_TERMINATED,
    EVENT_PHONEME,
    EVENT_SAMPLERATE,
) = range(9)

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


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

# English language voices shipped in espeak-ng-data/lang/gmw, and voice variants from voices/!v
# (two male, two female, each with its own pitch and formant scaling).
# en-gb-scotland is left out: its audio still varied between identical calls (state inside espeak).
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = ("m1", "f1", "m3", "f4")
# espeak's pitch "flutter" and "roughness" read counters that persist across utterances, so the
# same call gave different audio (lengths drift by pitch periods). Every variant is served from a
# private overlay of espeak-ng-data with both switched off, and with echo off so that stop
# closures stay digital silence (which is how we find them). NEUTRAL_VARIANT does this for a bare
# language name ("en-us" -> "en-us+avrep").
_DETERMINISM_LINES = "\nflutter 0\nroughness 0\necho 0 0\n"
NEUTRAL_VARIANT = "avrep"
PAUSE_PHONEMES = frozenset({"_", "_:", "_::", "_!", "_^_", "_;_", "_|", "||", "|", "_X1"})


@dataclass(frozen=True, eq=False)
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

        lib_path = espeakng_loader.get_library_path()
        data_path = str(_overlay_data_dir(Path(espeakng_loader.get_data_path())))
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
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self._libc = ctypes.CDLL(None)  # espeak also draws noise from libc rand()
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            data_path.encode(),
            espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT,
        )
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

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int):
        language, _, variant = voice.partition("+")
        variant = variant or NEUTRAL_VARIANT
        # espeak silently ignores an unknown variant, so check it here.
        if not language or "/" in variant or not (self.data_path / "voices" / "!v" / variant).is_file():
            raise AvrepError(f"unknown espeak voice {voice!r} (see avrep.synth.speech.list_voices())")
        if self.lib.espeak_SetVoiceByName(f"{language}+{variant}".encode()) != EE_OK:
            raise AvrepError(f"unknown espeak voice {voice!r} (see avrep.synth.speech.list_voices())")
        # Set every parameter on every call so earlier calls cannot leak into this one.
        for param, value in (
            (espeakRATE, rate),
            (espeakPITCH, pitch),
            (espeakRANGE, pitch_range),
            (espeakVOLUME, 100),
            (espeakWORDGAP, 0),
            (espeakPUNCTUATION, 0),
            (espeakCAPITALS, 0),
        ):
            self.lib.espeak_SetParameter(param, value, 0)
        # Both noise sources are reseeded per call: the same arguments give the same samples.
        self.lib.espeak_ng_SetRandSeed(seed)
        self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        self._chunks, self._events = [], []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
        if err != EE_OK:
            raise AvrepError(f"espeak-ng failed on {text!r} with voice {voice!r} (error {err})")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events, self._chunks, self._events = self._events, [], []
        return audio, events


def _overlay_data_dir(data: Path) -> Path:
    """A private espeak-ng-data: symlinks to the shipped files, rewritten (deterministic) variants."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="avrep-espeak-"))
    pid = os.getpid()
    atexit.register(lambda: shutil.rmtree(root, ignore_errors=True) if os.getpid() == pid else None)
    out = root / "espeak-ng-data"
    (out / "voices" / "!v").mkdir(parents=True)
    for entry in data.iterdir():
        if entry.name != "voices":
            (out / entry.name).symlink_to(entry)
    for entry in (data / "voices").iterdir():
        if entry.name != "!v":
            (out / "voices" / entry.name).symlink_to(entry)
    for entry in sorted((data / "voices" / "!v").iterdir()):
        text = entry.read_text(encoding="utf-8", errors="replace")
        (out / "voices" / "!v" / entry.name).write_text(text.rstrip("\n") + _DETERMINISM_LINES)
    (out / "voices" / "!v" / NEUTRAL_VARIANT).write_text(
        f"language variant\nname {NEUTRAL_VARIANT}" + _DETERMINISM_LINES
    )
    return out


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The per-process engine, created on first use (a forked child inherits a valid
    synchronous-mode state, so workers may fork after the parent has synthesised)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def list_voices() -> list[str]:
    """The 28 English voices `<language>+<variant>` (7 accents x 4 variants), in a fixed order.

    Voice i has accent i % 7, so any prefix of 7 voices covers every accent and alternates male
    and female variants. Only combinations whose files ship with espeakng-loader are listed.
    """
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    langs = {p.name.lower() for p in (data / "lang" / "gmw").iterdir()}
    variants = {p.name for p in (data / "voices" / "!v").iterdir()}
    n_a, n_v = len(ACCENTS), len(VARIANTS)
    # round r = i // n_a shifts every accent to its next variant, so all n_a * n_v pairs appear
    pairs = [(ACCENTS[i % n_a], VARIANTS[(i % n_a + i // n_a) % n_v]) for i in range(n_a * n_v)]
    return [f"{a}+{v}" for a, v in pairs if a in langs and v in variants]


_STRESS = "'," + "%="  # espeak stress marks prefixed to vowel mnemonics
_STOP_INITIALS = frozenset("pbtdkg")  # p b t d k g and the affricates tS dZ
_VOICELESS_INITIALS = frozenset("ptk")
_SILENCE_LEVEL = 2  # int16 amplitude treated as digital silence (closures are exact zeros)
_MIN_CLOSURE = 22  # 1 ms at 22,050 Hz: shorter silent runs are not a closure
_MAX_CLOSURE = 2205  # 100 ms: lips close at most this long before a burst after a pause


def _decode_phoneme(raw: bytes) -> str:
    """Phoneme mnemonic from the NUL-padded 8-byte id, without stress marks ("'eI" -> "eI")."""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").lstrip(_STRESS)


def _word_text(text: str, pos: int) -> str:
    """The written word at 1-based character `pos`: its whitespace token without outer punctuation."""
    token = text[pos - 1 :].split(None, 1)[0] if pos >= 1 and text[pos - 1 :].strip() else ""
    return token.strip(string.punctuation + "\u201c\u201d\u2018\u2019")


def _silent_run_start(silent: np.ndarray, lo: int, hi: int) -> int:
    """Start of the run of silent samples that ends at `hi` (searching no earlier than `lo`)."""
    loud = np.flatnonzero(~silent[lo:hi])
    return lo + int(loud[-1]) + 1 if loud.size else lo


def synthesize(
    text: str,
    voice: str,
    rate: int = 175,
    pitch: int = 50,
    sample_rate: int = SAMPLE_RATE,
    pitch_range: int = 50,
    seed: int = 0,
) -> Speech:
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
        raw, events = _engine().synth(text, voice, rate, pitch, pitch_range, seed)
    if raw.size == 0:
        raise AvrepError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
    audio = raw.astype(np.float32) / 32768.0
    if sample_rate != ESPEAK_SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(sample_rate, ESPEAK_SAMPLE_RATE)
        audio = resample_poly(audio, sample_rate // g, ESPEAK_SAMPLE_RATE // g).astype(np.float32)
        np.clip(audio, -1.0, 1.0, out=audio)
    ratio = sample_rate / ESPEAK_SAMPLE_RATE
    phonemes, words, word_phonemes = _timings(raw, events, text, ratio, len(audio))
    return Speech(
        audio=audio,
        sample_rate=sample_rate,
        words=words,
        phonemes=phonemes,
        voice=voice,
        text=text,
        word_phonemes=word_phonemes,
    )


def _timings(raw: np.ndarray, events: list, text: str, ratio: float, n_out: int):
    """Phoneme and word spans (output samples) from espeak's events, which arrive in text order."""
    n_raw = len(raw)

    def conv(s: int) -> int:
        return min(max(int(round(s * ratio)), 0), n_out)

    # Walk the events in order: each PHONEME belongs to the latest WORD event before it.
    ph: list[list] = []  # [name, raw start, word index or -1]
    w_raw: list[tuple[int, int, int]] = []  # (raw start, text position, length)
    for typ, s, pos, length, raw_id in events:
        s = min(max(s, 0), n_raw)
        if typ == EVENT_WORD:
            w_raw.append((s, pos, length))
        elif typ == EVENT_PHONEME:
            name = _decode_phoneme(raw_id)
            ph.append([name, s, len(w_raw) - 1 if name not in PAUSE_PHONEMES else -1])
    # Stops: espeak's event for a stop after silence marks its release burst; the silent closure
    # before it (lips or tongue already shut) belongs to the stop. The aspiration after a
    # voiceless burst (lips already parting) goes to the next phoneme of the same word; a voiced
    # or word-final stop keeps its release. Phoneme i spans [bound[i], bound[i + 1]).
    silent = np.abs(raw.astype(np.int32)) <= _SILENCE_LEVEL
    ev = [s for _, s, _ in ph] + [n_raw]
    closure = [None] * len(ph)
    for i, (name, s, _) in enumerate(ph):
        if name[:1] in _STOP_INITIALS:
            lo = max(ev[i - 1] if i else 0, s - _MAX_CLOSURE)
            c = _silent_run_start(silent, lo, s)
            if s - c >= _MIN_CLOSURE:
                closure[i] = c
    bound = [ev[0]] if not ph or closure[0] is None else [closure[0]]
    for i in range(1, len(ph)):
        if closure[i] is not None:
            bound.append(closure[i])
        elif closure[i - 1] is not None and ph[i - 1][0][:1] in _VOICELESS_INITIALS and ph[i][2] == ph[i - 1][2]:
            bound.append(ev[i - 1])  # the previous stop's aspiration starts this phoneme
        else:
            bound.append(ev[i])
    bound.append(n_raw)
    bound = np.maximum.accumulate(np.asarray(bound, dtype=np.int64)).tolist()
    # Zero-length phonemes go; `audio_end` keeps where each phoneme's sound really stops
    # (the next event), so a word ending in a stop keeps its release.
    phonemes: list[tuple[str, int, int]] = []
    owner: list[int] = []
    audio_end: list[int] = []
    for i, (name, _, w) in enumerate(ph):
        start, end = conv(bound[i]), conv(bound[i + 1])
        if end > start:
            phonemes.append((name, start, end))
            owner.append(w)
            audio_end.append(conv(max(ev[i + 1], bound[i + 1])))
    # A word starts with its first phoneme (espeak sometimes places the WORD event on the previous
    # word's last phoneme, e.g. "pumpkin again") and ends at the end of its last phoneme's sound or
    # at the next word's start, whichever comes first. Words without phonemes use the event.
    owned = [[k for k, w in enumerate(owner) if w == i] for i in range(len(w_raw))]
    starts = [phonemes[own[0]][1] if own else conv(s) for (s, _, _), own in zip(w_raw, owned)]
    starts = np.maximum.accumulate(np.asarray(starts or [0], dtype=np.int64)).tolist()
    words: list[tuple[str, int, int]] = []
    word_phonemes: list[list[str]] = []
    for i, ((_, pos, _), own) in enumerate(zip(w_raw, owned)):
        nxt = starts[i + 1] if i + 1 < len(w_raw) else n_out
        end = max(min(nxt, audio_end[own[-1]]) if own else nxt, starts[i])
        words.append((_word_text(text, pos), starts[i], end))
        word_phonemes.append([phonemes[k][0] for k in own])
    return phonemes, words, word_phonemes


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
