"""Pure statistics of the judge: numpy, scipy and the standard library only.

No I/O, no gRPC, no clock. The judge is a pipeline of small stages, each with its own
tests: :mod:`preprocess` (NaN policy, outliers) -> :mod:`classify` (one outcome per
metric, from :mod:`rates`, :mod:`mann_whitney` and :mod:`tails`) -> :mod:`score`
(groups, critical metrics, decision).
"""
