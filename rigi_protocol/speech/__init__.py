"""The spoken call: phrases per language, espeak-ng synthesis, WAV helpers and the chime."""
