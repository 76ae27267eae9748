"""The benchmark behind ``cryoet-particles benchmark`` (writes docs/benchmarks.md).

It simulates test tomograms, runs every registered method (:mod:`.methods`) in its own
process and scores them; :mod:`.training` measures training on the user's tomogram.
"""
