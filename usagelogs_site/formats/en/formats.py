"""Dates and times on every admin page (key, token, account and access-record
lists and forms) in the ISO style of the call pages: 2026-12-02 16:19:05, not
"Dec. 2, 2026, 4:19 p.m.". Picked up through ``FORMAT_MODULE_PATH``."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i:s"
