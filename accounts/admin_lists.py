"""Admin lists that answer any query string with a page, never a server error
and never a silently unfiltered list.

Django's ChangeList treats what it cannot use in ways a person cannot see: a
parameter no filter knows redirects to ``?e=1``, which then shows the whole
list without a word; a model field that is no sidebar filter
(``?status_code__gte=500``) narrows the rows behind the filters' back; a date
drill-down in the year 9999, a 40-digit year or a NUL character reaches
Python's calendar or the database and ends in a server error.

``CheckedChangeList`` reads the query string before Django's filters do. A
parameter that no sidebar filter, the date drill-down or the list itself
offers, a value with a NUL character, a drill-down that is not a date in the
years 1900 to 9998, or a value a field filter cannot use is *refused*: the
page says so, naming the parameter, and lists nothing. A page number or an
order the list does not have falls back to the nearest page or the default
order, with a message. Nothing is redirected.

``CheckedListMixin`` puts it on a ModelAdmin and shows its messages.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import ListFilter, SimpleListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import (
    ERROR_FLAG,
    IGNORED_PARAMS,
    ORDER_VAR,
    PAGE_VAR,
    SEARCH_VAR,
    ChangeList,
    ChangeListSearchForm,
)
from django.db.models import Field
from django.db.models.constants import LOOKUP_SEP
from django.utils import timezone
from django.utils.text import Truncator

# The date drill-down's years: those of the call list's time range filter.
EARLIEST_YEAR, LATEST_YEAR = 1900, 9998
QUOTED_CHARS = 60  # of a parameter's name or value repeated in a message


class Problem(NamedTuple):
    """A message about the query string: a level of ``django.contrib.messages``, and its text."""

    level: int
    text: str


def quoted(text: str) -> str:
    """A name or value from the address as a message repeats it: cut short,
    with control characters (a NUL) shown as a replacement character."""
    printable = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return f"“{Truncator(printable).chars(QUOTED_CHARS)}”"


class CheckedSearchForm(ChangeListSearchForm):
    """Django's search form without its own check for NUL characters: that
    check queues a message even where no page is shown (an export), and the
    list refuses a NUL like in any other parameter, naming it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[SEARCH_VAR].validators = []


class CheckedChangeList(ChangeList):
    """A ChangeList that refuses what it cannot honour, and says so."""

    search_form_class = CheckedSearchForm
    # Parameters of the list itself that are not filters (Django's: show all,
    # order, search, facets, popups); the page number is checked on its own.
    list_parameters: frozenset[str] = frozenset(IGNORED_PARAMS)
    # True: every parameter takes one value. Django's field filters read
    # several values of one parameter as "any of them", so other lists allow it.
    one_value_each = False

    # --- reading the query string ---------------------------------------------------

    def get_filters(self, request):
        if not hasattr(self, "refusals"):  # get_queryset may run more than once
            self.check_query_string(request)
        specs, has_filters, remaining, may_have_duplicates, has_active = super().get_filters(
            request
        )
        # A lookup on a sidebar filter's field that the filter itself did not
        # take (``group__name`` beside the group filter): Django would apply it
        # without showing it in the sidebar.
        for name in remaining:
            self.refuse(name, f"{quoted(name)} is not a filter of this list")
        return specs, has_filters, {}, may_have_duplicates, has_active or bool(self.refused_names)

    def check_query_string(self, request) -> None:
        """Decide, before any filter reads them, which parameters are refused,
        and read the date drill-down."""
        self.refusals: list[Problem] = []
        self.refused_names: set[str] = set()
        self.notices: list[Problem] = []
        self.date_range: tuple[datetime, datetime] | None = None
        names, prefixes = self.filter_parameter_names()
        drill_down = self.drill_down_names()
        for name, values in request.GET.lists():
            field_lookup = name not in names and name.startswith(prefixes)
            if name == ERROR_FLAG:
                self.refuse(name, f"{quoted(name)} marks an address whose filters were not valid")
            elif "\x00" in name or any("\x00" in value for value in values):
                self.refuse(name, f"{quoted(name)} contains a NUL character")
            elif not (
                name in names
                or field_lookup
                or name in drill_down
                or name in self.list_parameters
                or name == PAGE_VAR
            ):
                self.refuse(name, f"{quoted(name)} is not a filter of this list")
            elif self.one_value_each and len(values) > 1:
                self.refuse(
                    name, f"{quoted(name)} takes one value, and the address gives {len(values)}"
                )
            elif field_lookup and not self.model_admin.lookup_allowed(name, values[-1], request):
                self.refuse(name, f"{quoted(name)} is not a filter of this list")
        if not drill_down & self.refused_names:
            self.date_range = self.read_date_drill_down()
        order = self.params.get(ORDER_VAR)
        if order and ORDER_VAR not in self.refused_names and not self.order_is_offered(order):
            self.notices.append(
                Problem(
                    messages.WARNING,
                    f"Order {quoted(order)} is not one this list offers, "
                    "so it is in its default order.",
                )
            )
            del self.params[ORDER_VAR]
            del self.filter_params[ORDER_VAR]
        # Refused parameters stay in the links (filter_params), so a link
        # from this page (the export, the usage stats) refuses them too, but
        # nothing reads their values.
        for name in self.refused_names:
            self.params.pop(name, None)
        if SEARCH_VAR in self.refused_names:
            self.query = ""

    def refuse(self, names: str | list[str], text: str) -> None:
        """Refuse one or more parameters, with one message."""
        names = [names] if isinstance(names, str) else names
        if not set(names) <= self.refused_names:
            self.refused_names.update(names)
            self.refusals.append(
                Problem(messages.ERROR, f"{text}, so no {self.nothing_shown()} are shown.")
            )

    def nothing_shown(self) -> str:
        return str(self.opts.verbose_name_plural)

    def filter_parameter_names(self) -> tuple[set[str], tuple[str, ...]]:
        """The parameters the sidebar filters read: exact names, and the field
        paths whose lookups a field filter reads (``group__id__exact``)."""
        names: set[str] = set()
        prefixes: list[str] = []
        for item in self.list_filter:
            if isinstance(item, (list, tuple)):
                item = item[0]
            if isinstance(item, Field):
                item = item.name
            if isinstance(item, str):
                names.add(item)
                prefixes.append(item + LOOKUP_SEP)
            elif isinstance(item, type) and issubclass(item, SimpleListFilter):
                names.add(item.parameter_name)
            elif isinstance(item, type) and issubclass(item, ListFilter):
                names.update(getattr(item, "parameter_names", ()))
        return names, tuple(prefixes)

    def drill_down_names(self) -> set[str]:
        if not self.date_hierarchy:
            return set()
        return {f"{self.date_hierarchy}__{unit}" for unit in ("year", "month", "day")}

    def read_date_drill_down(self) -> tuple[datetime, datetime] | None:
        """[start, end) of the date drill-down, or None without one (refusing
        it when it is not a date Python and the database can both hold)."""
        field = self.date_hierarchy
        if not field:
            return None
        parts = {unit: self.params.get(f"{field}__{unit}", "") for unit in ("year", "month", "day")}
        if not any(parts.values()):
            return None
        shown = "&".join(f"{field}__{unit}={value}" for unit, value in parts.items() if value)
        digits = {"year": 4, "month": 2, "day": 2}
        for unit, value in parts.items():
            if value and not re.fullmatch(rf"[0-9]{{1,{digits[unit]}}}", value):
                return self.refuse_drill_down(f"The date {quoted(shown)} is not a date")
        year, month, day = (int(parts[unit]) if parts[unit] else None for unit in parts)
        if year is None or (day is not None and month is None):
            return self.refuse_drill_down(
                f"The date {quoted(shown)} needs a year (and a month for a day)"
            )
        if not EARLIEST_YEAR <= year <= LATEST_YEAR:
            return self.refuse_drill_down(
                f"The date {quoted(shown)} is outside the years {EARLIEST_YEAR} to {LATEST_YEAR}"
            )
        try:
            # Month 0 and day 0 are not in the calendar: no default stands in for them.
            start = datetime(year, 1 if month is None else month, 1 if day is None else day)
        except ValueError:
            return self.refuse_drill_down(f"The date {quoted(shown)} is not in the calendar")
        if day is not None:
            end = start + timedelta(days=1)
        elif month is not None:
            end = start.replace(year=year + (month == 12), month=month % 12 + 1)
        else:
            end = start.replace(year=year + 1)
        if settings.USE_TZ:
            start, end = timezone.make_aware(start), timezone.make_aware(end)
        return start, end

    def refuse_drill_down(self, text: str) -> None:
        self.refuse(sorted(self.drill_down_names() & set(self.params)), text)

    def order_is_offered(self, order: str) -> bool:
        """Whether ``o`` names only columns this list sorts by (Django skips
        the others without a word)."""
        sortable = set()
        for index, name in enumerate(self.list_display):
            if self.sortable_by is not None and name not in self.sortable_by:
                continue
            try:
                if self.get_ordering_field(name):
                    sortable.add(str(index))
            except AttributeError:
                continue
        columns = [part.removeprefix("-") for part in order.split(".")]
        return all(column in sortable for column in columns) and len(set(columns)) == len(columns)

    # --- the rows ----------------------------------------------------------------

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        # The drill-down is applied by get_queryset, from date_range; refused
        # parameters are not applied at all.
        for name in (*getattr(self, "refused_names", ()), *self.drill_down_names()):
            lookup_params.pop(name, None)
        return lookup_params

    def get_queryset(self, request, exclude_parameters=None):
        try:
            rows = super().get_queryset(request, exclude_parameters)
        except IncorrectLookupParameters:
            # A field filter could not use its value (a word where it needs a
            # number, a choice that does not exist).
            if not hasattr(self, "filter_specs"):
                self.filter_specs, self.has_filters = [], False
            self.has_active_filters = True
            names = [
                name
                for spec in self.filter_specs
                for name in spec.expected_parameters()
                if name in self.filter_params
            ]
            self.refuse(
                names, f"The values of {', '.join(quoted(name) for name in names)} are not valid"
            )
            rows = self.root_queryset
        if self.date_range is not None:
            start, end = self.date_range
            rows = rows.filter(
                **{
                    f"{self.date_hierarchy}__gte": start,
                    f"{self.date_hierarchy}__lt": end,
                }
            )
        # Clearing the filters keeps only the search and the order (Django's
        # link would also keep the drill-down as raw __gte/__lt lookups).
        self.clear_all_filters_qs = self.get_query_string(
            remove=[name for name in self.filter_params if name not in self.list_parameters]
        )
        return rows.none() if self.refused() else rows

    def refused(self) -> bool:
        """Whether the list must show nothing: a parameter, or a filter's value, is refused."""
        return bool(self.refused_names) or any(self.filter_problems())

    def filter_problems(self) -> list[Problem]:
        """What the sidebar filters say about their values (``problem``, where a filter has one)."""
        return [
            spec.problem
            for spec in getattr(self, "filter_specs", ())
            if getattr(spec, "problem", None)
        ]

    @property
    def problems(self) -> list[Problem]:
        """Everything the page says about its query string, in the sidebar's order first."""
        return [*self.filter_problems(), *self.refusals, *self.notices]

    def get_results(self, request):
        try:
            super().get_results(request)
        except IncorrectLookupParameters:  # Django's answer to a page the list does not have
            paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
            self.page_num = min(max(self.page_num, 1), paginator.num_pages)
            super().get_results(request)
        self.check_page_number(request)

    def check_page_number(self, request) -> None:
        """Show the nearest page the list has, and say so, when asked for one
        it does not have (Django's pagination cannot draw it)."""
        last = self.paginator.num_pages if self.paginator is not None else 1
        self.page_num = min(max(self.page_num, 1), last)
        raw = request.GET.get(PAGE_VAR, "")
        if not raw or PAGE_VAR in self.refused_names or self.refused():
            return
        try:
            wanted = int(raw)
        except ValueError:  # Django shows the first page
            text = f"Page {quoted(raw)} is not a page number; this is page 1 of {last}."
        else:
            if wanted == self.page_num:
                return
            text = (
                f"There is no page {quoted(raw)} in this list; "
                f"this is page {self.page_num} of {last}."
            )
        self.notices.append(Problem(messages.WARNING, text))


class ReadOnlyAdminMixin:
    """A ModelAdmin of records the application writes (calls, access records,
    runs, keys an owner is shown): the admin lists and shows them, never adds,
    changes or deletes one."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CheckedListMixin:
    """A ModelAdmin whose list refuses, with messages, what it cannot honour
    (``CheckedChangeList``)."""

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        for problem in getattr(changelist, "problems", ()):
            messages.add_message(request, problem.level, problem.text)
        return response
