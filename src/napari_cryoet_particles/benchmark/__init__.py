"""The benchmark behind ``cryoet-particles benchmark`` (writes docs/benchmarks.md).

It simulates test tomograms (:mod:`.testset`), runs every registered method (:mod:`.methods`)
in its own process (:mod:`.child`, :mod:`.timing`), scores them (:mod:`.scoring`, :mod:`.crops`)
and writes the report (:mod:`.report`); :mod:`.run` holds the order of it all. The numbers aimed
for are one table, :mod:`.goals`; :mod:`.targets` says which are met and why not. :mod:`.training`
measures training on the user's tomogram, :mod:`.curation` the simulated user, :mod:`.huge` a
2 GB tomogram, :mod:`.generalisation` held-out simulation families and real volumes.
"""
