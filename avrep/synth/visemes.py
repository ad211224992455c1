"""Phoneme -> viseme map, articulatory targets with coarticulation, and homophene statistics.

Visemes are the mouth shapes a viewer can tell apart. We use 13 classes:

=============  ======================================  ===========================================
viseme         espeak phonemes (examples)              what the mouth does
=============  ======================================  ===========================================
sil            _ _: (pauses)                           relaxed, lips lightly closed
bilabial       p b m                                   lips pressed together, jaw closed
labiodental    f v                                     lower lip tucked under the upper teeth
dental         T D (th)                                tongue tip visible between the teeth
alveolar       t d n l s z (+ flap, syllabic l/n)      slightly open, teeth close, tongue tip up
postalveolar   S Z tS dZ (sh zh ch j)                  lips protruded and flared, teeth close
velar          k g N h x ? (back/glottal)              mid-open, no lip gesture (takes neighbours)
approximant    r w                                     lips rounded and narrowed, nearly closed
open           a aa A: A@ V                            jaw wide open
mid            E @ a# 3: e@ (schwa, bed, nurse)        jaw half open, neutral lips
close_front    i: I i j                                lips spread, jaw nearly closed, teeth shown
rounded_open   0 O: O@ (lot, thought, north)           jaw open, lips rounded
rounded_close  u: U (goose, foot)                      jaw nearly closed, lips rounded/protruded
=============  ======================================  ===========================================

Diphthongs map to the sequence of their parts (aI -> open, close_front; oU -> rounded_open,
rounded_close), so their mouth motion is rendered and counted as two shapes. Stress marks are
stripped by `avrep.synth.speech` before phonemes reach this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

import numpy as np

from avrep.conventions import FPS, SAMPLE_RATE
from avrep.errors import AvrepError

VISEMES: tuple[str, ...] = (
    "sil",
    "bilabial",
    "labiodental",
    "dental",
    "alveolar",
    "postalveolar",
    "velar",
    "approximant",
    "open",
    "mid",
    "close_front",
    "rounded_open",
    "rounded_close",
)
VISEME_INDEX = {v: i for i, v in enumerate(VISEMES)}

# Every phoneme name espeak-ng emits for the English voices (tables en, en-us, en-us-nyc, en-rp,
# en-sc, en-n, en-wi, en-wm and the base consonants they inherit) -> one or more visemes.
PHONEME_VISEMES: dict[str, tuple[str, ...]] = {
    # pauses
    **{p: ("sil",) for p in ("_", "_:", "_::", "_!", "_^_", "_;_", "_|", "||", "|", "_X1")},
    # bilabials
    **{p: ("bilabial",) for p in ("p", "b", "m", "m-")},
    # labiodentals
    **{p: ("labiodental",) for p in ("f", "v", "v#")},
    # dentals (th; Caribbean t[/d[ are dental stops)
    **{p: ("dental",) for p in ("T", "D", "t[", "d[")},
    # alveolars: stops, flap, nasal, lateral, sibilants and syllabic l/n
    **{
        p: ("alveolar",)
        for p in (
            "t",
            "d",
            "t#",
            "t2",
            "d#",
            "n",
            "n-",
            "n.",
            "l",
            "l-",
            "l/",
            "l/2",
            "l/3",
            "l#",
            "L",
            "@L",
            "s",
            "z",
            "z#",
            "z/2",
            "R",
            "R2",
            "R3",
            "r.",
            "s.",
            "z.",
        )
    },
    # postalveolars / palatals with lip protrusion
    **{p: ("postalveolar",) for p in ("S", "Z", "tS", "dZ", "S;", "Z;", "tS;", "dZ;", "s;", "z;")},
    # velars, uvulars and glottals: no lip gesture of their own
    **{p: ("velar",) for p in ("k", "g", "N", "N-", "x", "X", "h", "?", "c", "J", "C", "q", "Q", "#X1")},
    # approximants with lip rounding
    **{p: ("approximant",) for p in ("r", "r-", "r/", "r//", "w", "w#", "w2", "B", "**")},
    # open vowels (trap, bath, palm, strut, start)
    **{p: ("open",) for p in ("a", "a2", "aa", "A:", "A@", "A#", "A~", "a/", "V")},
    # mid / central vowels (dress, schwa, reduced a, nurse, square)
    **{
        p: ("mid",)
        for p in (
            "a#",
            "a#2",
            "E",
            "E#",
            "E2",
            "e",
            "e:",
            "e#",
            "e@",
            "@",
            "@-",
            "@2",
            "@5",
            "@#",
            "3",
            "3:",
            "VR",
            "IR",
            "#@",
            "#e",
            "#a",
        )
    },
    # close front vowels and the palatal glide
    **{p: ("close_front",) for p in ("i", "i:", "I", "I#", "I2", "I2#", "j", ";", "y", "Y", "#i")},
    # rounded open/back vowels (lot, thought, north, force)
    **{p: ("rounded_open",) for p in ("0", "0#", "02", "O", "O:", "O2", "O@", "o@", "o", "o:", "O~", "#o")},
    # rounded close vowels (goose, foot, cure)
    **{p: ("rounded_close",) for p in ("u", "u:", "U", "#u")},
    # diphthongs and triphthongs -> their parts
    **{p: ("open", "close_front") for p in ("aI", "aI2", "aI3")},
    "aI@": ("open", "close_front", "mid"),
    "aU": ("open", "rounded_close"),
    "aU@": ("open", "rounded_close", "mid"),
    "eI": ("mid", "close_front"),
    "EI": ("mid", "close_front"),
    "eU": ("mid", "rounded_close"),
    "iU": ("close_front", "rounded_close"),
    "uI": ("rounded_close", "close_front"),
    "oI": ("rounded_open", "close_front"),
    "OI": ("rounded_open", "close_front"),
    "oU": ("rounded_open", "rounded_close"),
    "oU#": ("rounded_open", "rounded_close"),
    "i@": ("close_front", "mid"),
    "i@3": ("close_front", "mid"),
    "U@": ("rounded_close", "mid"),
}

# American accents unround the LOT vowel ("0" is [A:] in en-us): accent -> phoneme overrides.
ACCENT_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    "en-us": {"0": ("open",), "0#": ("open",)},
    "en-us-nyc": {"0": ("open",), "0#": ("open",)},
}

ARTICULATORS: tuple[str, ...] = ("jaw", "spread", "round", "teeth", "tongue")
# Per-viseme targets, each in [0, 1]: jaw opening, lip spreading (width), lip rounding/protrusion,
# teeth visibility, tongue visibility. jaw = 0 means the lips touch (closed mouth).
TARGETS: dict[str, tuple[float, float, float, float, float]] = {
    "sil": (0.04, 0.40, 0.10, 0.00, 0.00),
    "bilabial": (0.00, 0.40, 0.15, 0.00, 0.00),
    "labiodental": (0.12, 0.50, 0.00, 0.85, 0.00),
    "dental": (0.22, 0.50, 0.00, 0.70, 0.90),
    "alveolar": (0.20, 0.55, 0.05, 0.60, 0.30),
    "postalveolar": (0.20, 0.25, 0.80, 0.60, 0.00),
    "velar": (0.35, 0.50, 0.10, 0.30, 0.00),
    "approximant": (0.15, 0.15, 0.90, 0.20, 0.00),
    "open": (0.90, 0.55, 0.05, 0.40, 0.20),
    "mid": (0.50, 0.55, 0.10, 0.40, 0.10),
    "close_front": (0.18, 0.90, 0.00, 0.70, 0.00),
    "rounded_open": (0.60, 0.20, 0.70, 0.20, 0.00),
    "rounded_close": (0.25, 0.10, 1.00, 0.10, 0.00),
}
# Dominance (Cohen & Massaro 1993): how strongly a segment imposes each articulator on its
# neighbours. Lip closure, the lip-teeth contact and the visible tongue must be reached, so those
# dominate; h/k/g barely move the lips and inherit the vowel's shape.
DOMINANCE: dict[str, tuple[float, float, float, float, float]] = {
    "sil": (0.5, 0.5, 0.5, 0.5, 0.5),
    "bilabial": (8.0, 1.0, 0.5, 8.0, 8.0),
    "labiodental": (3.0, 1.5, 1.0, 4.0, 3.0),
    "dental": (3.0, 1.0, 1.0, 4.0, 8.0),
    "alveolar": (1.0, 0.7, 0.5, 1.0, 1.0),
    "postalveolar": (2.0, 1.5, 3.0, 2.0, 1.0),
    "velar": (0.4, 0.3, 0.3, 0.4, 0.4),
    "approximant": (1.5, 2.0, 3.0, 1.0, 1.0),
    "open": (1.5, 1.0, 1.0, 1.0, 1.0),
    "mid": (1.0, 1.0, 1.0, 1.0, 1.0),
    "close_front": (1.0, 1.5, 1.5, 1.0, 1.0),
    "rounded_open": (1.5, 1.5, 2.0, 1.0, 1.0),
    "rounded_close": (1.0, 2.0, 3.0, 1.0, 1.0),
}
# Seconds over which a segment's dominance decays outside it, per articulator. Lip rounding is
# anticipated furthest (it starts well before a rounded vowel); jaw and tongue move quickest.
TIME_CONSTANTS: tuple[float, float, float, float, float] = (0.020, 0.040, 0.060, 0.025, 0.025)
EXPOSURE = 0.02  # seconds of motion one frame integrates (a 1/50 s shutter)
CENTRE_BOOST = 4.0  # the segment under the frame's centre outweighs neighbours that only overlap
BOOST_WIDTH = 0.004  # seconds over which that boost fades in at a segment boundary

_TARGET_ARRAY = np.array([TARGETS[v] for v in VISEMES], dtype=np.float64)
_DOMINANCE_ARRAY = np.array([DOMINANCE[v] for v in VISEMES], dtype=np.float64)
_MODIFIERS = re.compile(r"[#2345;\[/\-]+$")

REFERENCE_VOICE = "en-us"  # one fixed voice defines every word's viseme sequence


def _overrides(voice: str | None) -> dict[str, tuple[str, ...]]:
    return ACCENT_OVERRIDES.get((voice or "").partition("+")[0].lower(), {})


def phoneme_visemes(name: str, voice: str | None = None) -> tuple[str, ...]:
    """Visemes of one espeak phoneme (stress marks ignored) as spoken by `voice`'s accent.

    AvrepError if the phoneme is unknown.
    """
    base = name.lstrip("'," + "%=")
    over = _overrides(voice)
    if base in over:
        return over[base]
    if base in PHONEME_VISEMES:
        return PHONEME_VISEMES[base]
    stripped = _MODIFIERS.sub("", base)  # e.g. a rarer "t2" or "I2#" variant of a known phoneme
    if stripped in PHONEME_VISEMES:
        return PHONEME_VISEMES[stripped]
    raise AvrepError(f"phoneme {name!r} has no viseme (add it to avrep.synth.visemes.PHONEME_VISEMES)")


def phoneme_to_viseme(name: str, voice: str | None = None) -> str:
    """`phoneme_visemes` as one string: a diphthong gives its parts space-separated ("open close_front")."""
    return " ".join(phoneme_visemes(name, voice))


def phonemes_to_visemes(names: Iterable[str], collapse: bool = False, voice: str | None = None) -> list[str]:
    """Viseme sequence of a phoneme sequence (pauses dropped); `collapse` merges repeats."""
    out: list[str] = []
    for name in names:
        for v in phoneme_visemes(name, voice):
            if v == "sil" or (collapse and out and out[-1] == v):
                continue
            out.append(v)
    return out


def articulation_track(
    phonemes: Sequence[tuple[str, int, int]],
    n_frames: int,
    fps: float = FPS,
    sample_rate: int = SAMPLE_RATE,
    offset_samples: int = 0,
    voice: str | None = None,
) -> np.ndarray:
    """Mouth articulators per video frame: float32 [n_frames, 5] in ARTICULATORS order, in [0, 1].

    phonemes: (name, start, end) in audio samples (as `Speech.phonemes`); frame f shows the audio
    around sample offset_samples + (f + 0.5) * sample_rate / fps (negative offsets are fine).
    Per-viseme targets blend by Cohen-Massaro dominance: a segment counts fully while it overlaps
    the frame's 1/50 s exposure, CENTRE_BOOST times more when it holds the frame's centre, and
    decays exponentially (TIME_CONSTANTS) outside. Motion is continuous, anticipates upcoming
    shapes, and still reaches lip closure for bilabials. Time without phonemes is silence, a
    relaxed closed mouth. `voice` selects accent overrides (the unrounded American LOT vowel).
    """
    if n_frames < 0 or fps <= 0 or sample_rate <= 0:
        raise AvrepError(f"articulation_track: bad n_frames={n_frames} fps={fps} sample_rate={sample_rate}")
    spf = sample_rate / fps
    # Segments in seconds: (viseme index row for start, for end, start, end).
    seg_v0, seg_v1, seg_s, seg_e = [], [], [], []
    for name, start, end in phonemes:
        parts = phoneme_visemes(name, voice)
        s, e = start / sample_rate, max(end, start) / sample_rate
        # A diphthong's segment splits evenly into its parts; each part glides to the next.
        bounds = np.linspace(s, e, len(parts) + 1)
        for i, part in enumerate(parts):
            seg_v0.append(VISEME_INDEX[part])
            seg_v1.append(VISEME_INDEX[parts[i + 1]] if i + 1 < len(parts) else VISEME_INDEX[part])
            seg_s.append(bounds[i])
            seg_e.append(bounds[i + 1])
    sil = VISEME_INDEX["sil"]
    first = min(seg_s) if seg_s else 0.0
    last = max(seg_e) if seg_e else 0.0
    # Silence before the first and after the last phoneme.
    seg_v0 += [sil, sil]
    seg_v1 += [sil, sil]
    seg_s += [-np.inf, last]
    seg_e += [first, np.inf]
    v0, v1 = np.array(seg_v0), np.array(seg_v1)
    s_arr, e_arr = np.array(seg_s, dtype=np.float64), np.array(seg_e, dtype=np.float64)

    t = (offset_samples + (np.arange(n_frames) + 0.5) * spf) / sample_rate  # [F]
    half = 0.5 * min(EXPOSURE, 1.0 / fps)  # segments count fully while they overlap the exposure
    gap = np.maximum(s_arr[None] - t[:, None], t[:, None] - e_arr[None])  # < 0: centre inside
    dist = np.maximum(0.0, gap - half)
    dur = np.where(np.isfinite(e_arr - s_arr), np.maximum(e_arr - s_arr, 1e-6), 1.0)
    frac = np.clip((t[:, None] - s_arr[None]) / dur[None], 0.0, 1.0)  # [F, S]
    frac = np.where(np.isfinite(s_arr)[None], frac, 1.0)
    tau = np.array(TIME_CONSTANTS)
    # target[F, S, 5]: glide from the part's own target toward the next part's (diphthongs)
    target = _TARGET_ARRAY[v0][None] * (1 - frac[..., None]) + _TARGET_ARRAY[v1][None] * frac[..., None]
    weight = _DOMINANCE_ARRAY[v0][None] * np.exp(-dist[..., None] / tau)  # [F, S, 5]
    # smooth in time (a logistic step of BOOST_WIDTH s at the boundary), so motion stays continuous
    inside = 0.5 * (1.0 + np.tanh(-gap / (2.0 * BOOST_WIDTH)))
    weight *= (1.0 + (CENTRE_BOOST - 1.0) * inside)[..., None]
    track = (weight * target).sum(1) / np.maximum(weight.sum(1), 1e-12)
    return np.clip(track, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=8192)
def _word_visemes_cached(word: str, voice: str) -> tuple[str, ...]:
    from avrep.synth.speech import synthesize

    speech = synthesize(word, voice)
    names = [p for phs in speech.word_phonemes for p in phs]
    if not names:
        raise AvrepError(f"word {word!r}: espeak produced no phonemes with voice {voice!r}")
    return tuple(phonemes_to_visemes(names, voice=voice))


def word_visemes(word: str, voice: str = REFERENCE_VOICE) -> list[str]:
    """Viseme sequence of `word` as spoken alone by `voice` (one entry per phoneme part)."""
    if not word or not word.strip():
        raise AvrepError("word_visemes: empty word")
    return list(_word_visemes_cached(word.strip(), voice))


def viseme_key(visemes: Sequence[str]) -> tuple[str, ...]:
    """Homophene key: the viseme sequence with consecutive repeats collapsed."""
    out: list[str] = []
    for v in visemes:
        if not out or out[-1] != v:
            out.append(v)
    return tuple(out)


def homophene_groups(words: Iterable[str], voice: str = REFERENCE_VOICE) -> list[list[str]]:
    """Words that look the same on the lips (same collapsed viseme sequence).

    Groups keep the words' input order and are ordered by their first word; singletons included.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for w in dict.fromkeys(words):  # unique, order kept
        groups.setdefault(viseme_key(word_visemes(w, voice)), []).append(w)
    return list(groups.values())


def visual_ceiling(words: Iterable[str], voice: str = REFERENCE_VOICE) -> float:
    """Best top-1 word accuracy from lips alone with uniform word frequencies: groups / words."""
    words = list(dict.fromkeys(words))
    if not words:
        raise AvrepError("visual_ceiling: no words")
    return len(homophene_groups(words, voice)) / len(words)
