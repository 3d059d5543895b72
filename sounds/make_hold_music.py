#!/usr/bin/env python3
"""Generate the Centralita hold music (stdlib only, deterministic).

A 16-bar loop in C major at 96 BPM (40 s): I-vi-IV-V (C-Am-F-G) chord
progression with a soft pad, plucked eighth-note arpeggios, a bass line,
a kick on beats 1 and 3, a quiet shaker and a melody on top.

Output: WAV, 8000 Hz, mono, 16-bit signed PCM, peak about -6 dBFS.

The loop is seamless: note tails that ring past the end are wrapped
around to the start, and the progression ends on V leading back to I.

DTMF safety: every voice is built from additive partials, and any partial
that would fall within +-4 % of a DTMF frequency (697, 770, 852, 941,
1209, 1336, 1477, 1633 Hz) is simply left out, so the music never contains
a tonal component a DTMF detector could lock on to.

Usage: make_hold_music.py OUTPUT.wav
"""
import math
import struct
import sys
import wave

SR = 8000
BPM = 96
BEAT = 60.0 / BPM            # seconds per beat
BAR = 4 * BEAT
BARS = 16
N = int(round(BARS * BAR * SR))
PEAK_DBFS = -6.0
NYQ_LIMIT = 3400.0           # telephone band; no partials above this
DTMF = (697, 770, 852, 941, 1209, 1336, 1477, 1633)
DTMF_GUARD = 0.04            # relative distance to keep from DTMF tones

NOTE_INDEX = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5,
              "F#": 6, "G": 7, "G#": 8, "A": 9, "A#": 10, "B": 11}


def freq(name):
    """'A4' -> 440.0 (equal temperament)."""
    pitch, octave = name[:-1], int(name[-1])
    midi = 12 * (octave + 1) + NOTE_INDEX[pitch]
    return 440.0 * 2 ** ((midi - 69) / 12.0)


def dtmf_safe(f):
    return all(abs(f - d) > DTMF_GUARD * d for d in DTMF)


buf = [0.0] * N


def add_note(start, dur, f0, amp, tilt, decay, hdecay, attack=0.005,
             release=0.06, max_partials=12):
    """Additive 'plucked' note.

    start/dur in seconds; tilt: partial k has amplitude 1/k**tilt;
    decay: exponential decay rate (1/s) of the fundamental; hdecay: extra
    decay per partial so upper harmonics die faster (plucked timbre).
    """
    partials = []
    for k in range(1, max_partials + 1):
        fk = f0 * k
        if fk >= NYQ_LIMIT:
            break
        if not dtmf_safe(fk):
            continue
        partials.append((2 * math.pi * fk / SR, amp / k ** tilt,
                         decay + hdecay * (k - 1)))
    if not partials:
        return
    n_on = int(dur * SR)
    n_rel = int(release * SR)
    n_att = max(1, int(attack * SR))
    s0 = int(round(start * SR))
    for i in range(n_on + n_rel):
        t = i / SR
        if i < n_att:
            env = i / n_att
        elif i < n_on:
            env = 1.0
        else:
            env = 1.0 - (i - n_on) / n_rel
        v = 0.0
        for w, a, d in partials:
            v += a * math.exp(-d * t) * math.sin(w * i)
        buf[(s0 + i) % N] += env * v


def add_kick(start, amp):
    """Short decaying pitch-swept sine (120 Hz -> 45 Hz)."""
    s0 = int(round(start * SR))
    phase = 0.0
    for i in range(int(0.25 * SR)):
        t = i / SR
        f = 45 + 75 * math.exp(-t * 30)
        phase += 2 * math.pi * f / SR
        buf[(s0 + i) % N] += amp * math.exp(-t * 14) * math.sin(phase)


class LCG:
    """Tiny deterministic noise source."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (1103515245 * self.s + 12345) & 0x7FFFFFFF
        return self.s / 0x3FFFFFFF - 1.0


noise = LCG(20240611)


def add_shaker(start, amp):
    """Very short high-passed noise burst."""
    s0 = int(round(start * SR))
    prev = 0.0
    for i in range(int(0.05 * SR)):
        x = noise.next()
        hp = x - prev          # first-difference high-pass
        prev = x
        env = math.exp(-i / SR * 90)
        buf[(s0 + i) % N] += amp * env * hp


# --- score -----------------------------------------------------------------

CHORDS = ["C", "Am", "F", "G"] * 4
PAD = {"C": ["C4", "E4", "G4"], "Am": ["A3", "C4", "E4"],
       "F": ["A3", "C4", "F4"], "G": ["G3", "B3", "D4"]}
ARP = {"C": ["C3", "G3", "C4", "E4"], "Am": ["A2", "E3", "A3", "C4"],
       "F": ["F2", "C3", "F3", "A3"], "G": ["G2", "D3", "G3", "B3"]}
BASS = {"C": ("C2", "G2", "C3"), "Am": ("A1", "E2", "A2"),
        "F": ("F1", "C2", "F2"), "G": ("G1", "D2", "G2")}
ARP_PATTERN = [0, 1, 2, 3, 2, 1, 2, 1]      # one index per eighth note

# melody: per bar, list of (start beat, length in beats, note)
MELODY = [
    # A
    [(0, 1, "E4"), (1, 1, "G4"), (2, 1.5, "C5"), (3.5, 0.5, "B4")],
    [(0, 2, "A4"), (2, 1, "E4"), (3, 0.5, "A4"), (3.5, 0.5, "B4")],
    [(0, 1, "C5"), (1, 1, "A4"), (2, 1, "F4"), (3, 1, "A4")],
    [(0, 1.5, "G4"), (1.5, 0.5, "A4"), (2, 1, "B4"), (3, 1, "D5")],
    # A'
    [(0, 1, "E5"), (1, 0.5, "D5"), (1.5, 0.5, "C5"), (2, 2, "G4")],
    [(0, 1, "C5"), (1, 1, "B4"), (2, 1, "A4"), (3, 1, "E4")],
    [(0, 1.5, "F4"), (1.5, 0.5, "G4"), (2, 1, "A4"), (3, 1, "C5")],
    [(0, 3, "B4"), (3, 0.5, "A4"), (3.5, 0.5, "G4")],
    # B
    [(0, 0.5, "G4"), (0.5, 0.5, "C5"), (1, 0.5, "E5"), (1.5, 0.5, "D5"),
     (2, 2, "C5")],
    [(0, 0.5, "E4"), (0.5, 0.5, "A4"), (1, 0.5, "C5"), (1.5, 0.5, "E5"),
     (2, 2, "D5")],
    [(0, 0.5, "C5"), (0.5, 0.5, "D5"), (1, 1, "C5"), (2, 1, "A4"),
     (3, 1, "F4")],
    [(0, 2, "D5"), (2, 1, "B4"), (3, 1, "G4")],
    # A''
    [(0, 1, "E4"), (1, 1, "G4"), (2, 1.5, "C5"), (3.5, 0.5, "B4")],
    [(0, 2, "A4"), (2, 1, "E4"), (3, 0.5, "A4"), (3.5, 0.5, "B4")],
    [(0, 1.5, "F4"), (1.5, 0.5, "G4"), (2, 1, "A4"), (3, 1, "C5")],
    [(0, 1, "B4"), (1, 1, "D5"), (2, 2, "G4")],
]


def render():
    for bar, chord in enumerate(CHORDS):
        t0 = bar * BAR
        # pad: soft, slow attack, sustained for the whole bar
        for name in PAD[chord]:
            add_note(t0, BAR - 0.1, freq(name), 0.05, tilt=2.0, decay=0.3,
                     hdecay=0.5, attack=0.25, release=0.3, max_partials=4)
        # arpeggio: plucked eighth notes, accent on the beat
        for e, idx in enumerate(ARP_PATTERN):
            acc = 1.0 if e % 2 == 0 else 0.7
            add_note(t0 + e * BEAT / 2, BEAT / 2, freq(ARP[chord][idx]),
                     0.09 * acc, tilt=1.0, decay=5.0, hdecay=2.5,
                     attack=0.004, release=0.05)
        # bass: root (dotted quarter), root, fifth, octave, fifth
        root, fifth, octave = BASS[chord]
        for beat, length, name, a in ((0, 1.5, root, 1.0),
                                      (1.5, 0.5, root, 0.7),
                                      (2, 1, fifth, 0.9),
                                      (3, 0.5, octave, 0.8),
                                      (3.5, 0.5, fifth, 0.7)):
            add_note(t0 + beat * BEAT, length * BEAT - 0.02, freq(name),
                     0.22 * a, tilt=1.0, decay=2.5, hdecay=1.5,
                     attack=0.006, release=0.05)
        # drums: kick on 1 and 3, shaker on every eighth (off-beats louder)
        for beat in (0, 2):
            add_kick(t0 + beat * BEAT, 0.25)
        for e in range(8):
            add_shaker(t0 + e * BEAT / 2, 0.025 if e % 2 else 0.012)
        # melody: bell-ish electric-piano tone with a little vibrato-free sparkle
        for beat, length, name in MELODY[bar]:
            add_note(t0 + beat * BEAT, length * BEAT - 0.03, freq(name),
                     0.20, tilt=1.6, decay=1.8, hdecay=1.2, attack=0.008,
                     release=0.08, max_partials=6)


def write(path):
    peak = max(abs(x) for x in buf) or 1.0
    gain = (10 ** (PEAK_DBFS / 20.0)) * 32767 / peak
    frames = struct.pack("<%dh" % N, *(int(round(x * gain)) for x in buf))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(frames)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_hold_music.py OUTPUT.wav")
    render()
    write(sys.argv[1])
