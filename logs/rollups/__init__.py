"""Rollups: sums of calls per period and dimensions, kept exact.

``deltas`` computes what calls add, ``apply`` adds deltas to every level,
``fold`` moves what ingest left pending into the levels, ``rebuild``
recomputes them from raw calls. The levels themselves are models
(``logs.models.rollups``); the periods are ``logs.periods``' grids.
"""
