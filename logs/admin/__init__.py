"""The call pages of both admin sites (staff admin, account owners' portal).

Thin on purpose: what a user may see comes from ``logs.read`` (scoped by
``accounts.scoping``), the CSV from ``logs.read.export``. ``calls`` holds the
call list, detail, stats and export; ``changelist``, ``filters``, ``detail``
and ``stats_page`` the pieces they are built from; ``charts`` draws; every
number and time is shown through ``formatting``; ``records`` holds the
read-only pages about the data (access records, prune runs, folding).
"""

from logs.admin import calls, pricing, records  # noqa: F401 (registers the admin pages)
