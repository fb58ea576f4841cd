"""Everything that reads calls, scoped to what the reader may see.

``scope`` (who sees which calls, on top of ``accounts.scoping``), ``filters``
(the filter vocabulary), ``planner`` (which rollup level or raw calls answer
each part of a time range), ``snapshot`` (one moment per read), and the
answers built on them: ``totals``, ``seek`` (deep list pages), ``stats``,
``stats_sources`` (the usage stats page), ``slow`` (slow-call marks).
"""
