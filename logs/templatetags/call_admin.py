"""The call list's date drill-down, without scanning the calls table.

Django's ``{% date_hierarchy %}`` lists the years, months and days that have
rows with ``SELECT DISTINCT`` over the filtered calls — a full scan at ten
million rows. This one reads the first and last call the user may see (two
index lookups) and offers every year, month and day between them.
"""

import calendar
import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    items_for_result,
    result_headers,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters, admin_urlname
from django.contrib.admin.utils import display_for_field, display_for_value, quote
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Max, Min
from django.urls import reverse
from django.utils import formats, numberformat, timezone
from django.utils.formats import get_format
from django.utils.safestring import SafeData, SafeString
from django.utils.text import capfirst
from django.utils.translation import get_language

from logs.admin import formatting

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


# --- the call list's rows ---------------------------------------------------------
#
# Django's ``{% result_list %}`` renders every cell through ``items_for_result``:
# a field lookup, ``format_html`` and lazy-string wrappers per cell, ~0.3 ms a
# row, a third of a 100-row page's server time. ``call_result_list`` gives the
# same HTML (tests/logs/test_admin_calls.py compares the two) from a plan made
# once per page: how each column is read and its class, and the change URL with
# the page's preserved filters, filled in per row with the primary key.


@register.inclusion_tag("admin/change_list_results.html")
def call_result_list(cl):
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": [],
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": [ResultList(None, [row]) for row in call_rows(cl)],
    }


def call_rows(cl) -> list[SafeString]:
    """Each result's cells as one string, as ``items_for_result`` renders them."""
    if cl.formset or cl.is_popup or cl.to_field or cl.list_display_links is None:
        # Shapes this list never has; Django renders them as it always does.
        return [SafeString("".join(items_for_result(cl, row, None))) for row in cl.result_list]
    if not cl.result_list:
        return []
    columns = [_column(cl, index, name) for index, name in enumerate(cl.list_display)]
    link_url = _change_url_template(cl)
    rows = []
    for result in cl.result_list:
        cells = []
        for column in columns:
            text = column.render(result)
            if column.link:
                url = link_url.replace(_PK_MARK, str(quote(result.pk)))
                cells.append(
                    f'<{column.tag} class="{column.classes}"><a href="{url}">{text}</a>'
                    f"</{column.tag}>"
                )
            else:
                cells.append(f'<td class="{column.classes}">{text}</td>')
        rows.append(SafeString("".join(cells)))
    return rows


_PK_MARK = "__call_pk__"


def _change_url_template(cl) -> str:
    url = reverse(
        admin_urlname(cl.opts, "change"),
        args=(_PK_MARK,),
        current_app=cl.model_admin.admin_site.name,
    )
    url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url)
    return escape(url)


@dataclass
class _Column:
    classes: str
    link: bool
    tag: str
    render: Callable[[Any], str]


def _column(cl, index: int, name) -> _Column:
    model_admin = cl.model_admin
    empty = model_admin.get_empty_value_display()
    classes = [f"field-{_column_name(name, index)}"]
    link = name in cl.list_display_links or (index == 0 and not cl.list_display_links)
    tag = (
        "th"
        if link and not any(n in cl.list_display_links for n in cl.list_display[:index])
        else "td"
    )
    try:
        field = cl.opts.get_field(name)
    except FieldDoesNotExist:
        field = None
    if field is None or field.auto_created:
        attr = name if callable(name) else getattr(model_admin, name, None)
        if attr is None or not callable(attr):
            raise ValueError(f"call_result_list reads fields and ModelAdmin methods, not {name!r}")
        empty = getattr(attr, "empty_value_display", empty)
        boolean = getattr(attr, "boolean", False)
        if getattr(attr, "reads_changelist", False):
            # A column that needs the page (say, its slow-call thresholds): see
            # reads_changelist in logs.admin.calls.
            attr = functools.partial(attr, changelist=cl)

        def render(result, attr=attr, empty=empty, boolean=boolean):
            value = attr(result)
            if isinstance(value, str) and not boolean and value.strip():
                # What display_for_value gives a non-blank string: the string itself.
                return value if isinstance(value, SafeData) else escape(value)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            return _escaped(display_for_value(value, empty, boolean))

    elif isinstance(field.remote_field, models.ManyToOneRel):
        classes.append("nowrap")

        def render(result, name=field.name, empty=empty):
            value = getattr(result, name)
            return _escaped(empty if value is None else value)

    elif field.flatchoices:
        # display_for_field shows a choice's label (the empty value if unknown).
        labels = {value: escape(str(label)) for value, label in field.flatchoices}
        empty_label = escape(str(empty))

        def render(result, name=field.attname, labels=labels, empty_label=empty_label):
            return labels.get(getattr(result, name), empty_label)

    elif isinstance(field, (models.CharField, models.TextField)):

        def render(result, name=field.attname, empty=empty):
            value = getattr(result, name)
            if value is None or not value.strip():
                return _escaped(empty)  # display_for_field's empty value
            return escape(value)

    elif isinstance(field, (models.IntegerField, models.FloatField)):
        # display_for_field's number_format, with the page's language's formats
        # looked up once rather than per cell.
        lang = get_language()
        separators = {
            name: get_format(name, lang, use_l10n=True)
            for name in ("DECIMAL_SEPARATOR", "NUMBER_GROUPING", "THOUSAND_SEPARATOR")
        }

        def render(result, name=field.attname, empty=empty, separators=separators):
            value = getattr(result, name)
            if value in field.empty_values:
                return _escaped(empty)
            return escape(
                numberformat.format(
                    value,
                    separators["DECIMAL_SEPARATOR"],
                    None,
                    separators["NUMBER_GROUPING"],
                    separators["THOUSAND_SEPARATOR"],
                    use_l10n=True,
                )
            )

    else:
        if isinstance(field, (models.DateField, models.TimeField)):
            classes.append("nowrap")

        def render(result, field=field, empty=empty, avoid_link=link):
            value = getattr(result, field.attname)
            if isinstance(value, str) and value.strip() == "":
                value = ""
            return _escaped(display_for_field(value, field, empty, avoid_link=avoid_link))

    return _Column(classes=" ".join(classes), link=link, tag=tag, render=render)


def _column_name(name, index: int) -> str:
    """A list_display entry's name as the admin's CSS class has it (a callable's
    __name__, ``lambda<index>`` for a lambda), as Django's result list writes it."""
    if callable(name):
        return f"lambda{index}" if name.__name__ == "<lambda>" else name.__name__
    return name


def _escaped(value) -> str:
    return value if isinstance(value, SafeData) else escape(str(value))


# --- the stats page's number tables -------------------------------------------------


@register.simple_tag
def chart_table_rows(chart) -> SafeString:
    """The rows of a chart's table of numbers: the first cell a row header.

    A loop in the template rendered each cell through the template engine
    (variable lookup, localisation, escaping): a 30-day chart per hour has 720
    rows, six charts ~25,000 cells, most of the page's time. The cells are
    display strings already; they are only escaped here, as ``{{ cell }}`` did
    (``html.escape``, what Django's ``escape`` calls). One row per line, no
    indentation: 3,600 rows of indentation were 150 kB of a month of hours.

    The whole table is escaped at once, its cells and rows joined by control
    characters that no cell holds and that escaping leaves alone, which are
    then made into the tags: one pass over the text instead of five calls a cell.
    """
    rows = chart.rows
    text = _ROW_BREAK.join(_CELL_BREAK.join(map(str, row)) for row in rows)
    if (
        any(isinstance(cell, SafeData) for row in rows for cell in row)
        or text.count(_CELL_BREAK) != sum(len(row) - 1 for row in rows)
        or text.count(_ROW_BREAK) != max(len(rows) - 1, 0)
    ):
        # Safe HTML in a cell, or a cell holding a break: each cell on its own.
        return SafeString("\n".join(_table_row(list(map(_escaped, row))) for row in rows))
    if not rows:
        return SafeString("")
    return SafeString(
        "\n".join(_table_row(row.split(_CELL_BREAK)) for row in escape(text).split(_ROW_BREAK))
    )


def _table_row(cells: list[str]) -> str:
    header, *numbers = cells
    # Right-aligned by the stylesheet (every cell after the header is a number).
    return f'<tr><th scope="row">{header}</th>{"".join(f"<td>{n}</td>" for n in numbers)}</tr>'


_CELL_BREAK, _ROW_BREAK = "\x00", "\x01"


# --- numbers for reading (logs.admin.formatting) -------------------------------------------


@register.filter
def readable(value) -> str:
    return formatting.readable(value)


@register.filter
def compact(value) -> str:
    return formatting.compact(value)
