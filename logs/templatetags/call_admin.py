"""The call list's date drill-down, without scanning the calls table.

Django's ``{% date_hierarchy %}`` lists the years, months and days that have
rows with ``SELECT DISTINCT`` over the filtered calls — a full scan at ten
million rows. This one reads the first and last call the user may see (two
index lookups) and offers every year, month and day between them.
"""

import calendar
import datetime

from django import template
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst

register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html")
def call_date_hierarchy(cl):
    field = cl.date_hierarchy
    if not field:
        return {"show": False}
    year_field, month_field, day_field = (f"{field}__{unit}" for unit in ("year", "month", "day"))
    year, month, day = (_int(cl.params.get(name)) for name in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    if year and month and day:
        try:
            chosen = datetime.date(year, month, day)
        except ValueError:
            return {"show": False}
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }

    bounds = cl.root_queryset.order_by().aggregate(first=Min(field), last=Max(field))
    if bounds["first"] is None:
        return {"show": False}
    first, last = (timezone.localtime(bounds[k]).date() for k in ("first", "last"))

    if year and month:
        if not 1 <= month <= 12:
            return {"show": False}
        days = range(1, calendar.monthrange(year, month)[1] + 1)
        dates = [datetime.date(year, month, d) for d in days]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in dates
                if first <= d <= last
            ],
        }
    if year:
        months = [datetime.date(year, m, 1) for m in range(1, 13)]
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
                if first.replace(day=1) <= m <= last
            ],
        }
    return {
        "show": True,
        "choices": [
            {"link": link({year_field: y}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }


def _int(value):
    if isinstance(value, list):
        value = value[-1] if value else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
