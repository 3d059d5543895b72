#!/usr/bin/env bash
# Regenerate every Centralita sound file from prompts.tsv (+ numbers and hold
# music). Deterministic. Run from anywhere:  bash sounds/make.sh
#
# Output format for every file: WAV, 8000 Hz, mono, 16-bit signed PCM.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

SPEED=150                                   # espeak-ng words per minute
declare -A VOICE=([es]=es [en]=en-us)       # espeak-ng voice per language
FMT=(-r 8000 -c 1 -b 16 -e signed-integer)  # output format
SOX=(sox -R -D -V1)                         # repeatable, no dither, quiet

for bin in espeak-ng sox python3; do
    command -v "$bin" >/dev/null || { echo "make.sh: $bin not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# speak LANG TEXT OUT: TTS -> 8 kHz, silence trimmed at both ends, not normalised
speak() {
    local lang=$1 text=$2 out=$3
    espeak-ng -v "${VOICE[$lang]}" -s "$SPEED" -w "$tmp/raw.wav" -- "$text"
    "${SOX[@]}" "$tmp/raw.wav" "${FMT[@]}" "$out" \
        highpass 100 rate -v 8000 \
        silence 1 0.01 0.3% reverse silence 1 0.01 0.3% reverse
}

# finish IN... OUT: concatenate, normalise to -3 dBFS, 50 ms lead-in, 200 ms tail
finish() {
    local out=${*: -1}
    "${SOX[@]}" "${@:1:$#-1}" "${FMT[@]}" "$out" norm -3 pad 0.05 0.2
}

mkdir -p es/numbers en/numbers music

# --- prompts ---------------------------------------------------------------
declare -A CHOOSE=()
count=0
while IFS=$'\t' read -r lang name text; do
    [[ -z "$lang" || "$lang" == lang || "$lang" == \#* ]] && continue
    [[ -n "${VOICE[$lang]:-}" ]] || { echo "make.sh: unknown lang '$lang'" >&2; exit 1; }
    if [[ "$name" == choose_language ]]; then
        # bilingual prompt: assembled below from both language rows
        CHOOSE[$lang]=$text
        continue
    fi
    speak "$lang" "$text" "$tmp/p.wav"
    finish "$tmp/p.wav" "$lang/$name.wav"
    count=$((count + 1))
done < prompts.tsv

# choose_language: Spanish part (es voice) + 300 ms + English part (en voice),
# identical copies in es/ and en/.
[[ -n "${CHOOSE[es]:-}" && -n "${CHOOSE[en]:-}" ]] \
    || { echo "make.sh: choose_language needs an es and an en row" >&2; exit 1; }
speak es "${CHOOSE[es]}" "$tmp/cl_es.wav"
speak en "${CHOOSE[en]}" "$tmp/cl_en.wav"
"${SOX[@]}" -n "${FMT[@]}" "$tmp/gap.wav" trim 0 0.3
finish "$tmp/cl_es.wav" "$tmp/gap.wav" "$tmp/cl_en.wav" es/choose_language.wav
cp es/choose_language.wav en/choose_language.wav
count=$((count + 2))

# --- numbers 0..99 (espeak-ng reads digits as words) ------------------------
for lang in es en; do
    for n in $(seq 0 99); do
        speak "$lang" "$n" "$tmp/n.wav"
        finish "$tmp/n.wav" "$lang/numbers/$n.wav"
    done
done

# --- hold music ----------------------------------------------------------------
python3 make_hold_music.py music/hold.wav

# --- ringback: what an agent hears while a consulted colleague's phone rings --
# (425 Hz, 1.5 s on, 3 s off: the Spanish ringing tone; looped by the player)
"${SOX[@]}" -n "${FMT[@]}" music/ringback.wav synth 1.5 sine 425 gain -12 pad 0 3

echo "make.sh: $count prompts, 200 numbers, music/hold.wav, music/ringback.wav"
