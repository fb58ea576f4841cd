"""Sidebar filters for the call list (staff admin and, later, the portal).

Choices come from the scoped selectors, never from the calls table: a model
filter must not run SELECT DISTINCT over millions of rows, and an account owner
must not see another account's key or group names among the choices.

Bad input (a malformed date, an end before the start, an unknown model) is
answered with a message on the page (each filter's ``problem``, which the list
shows) and an empty list, never a server error and never a silently
unfiltered list.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, time, timedelta

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.admin_lists import Problem, quoted
from accounts.scoping import key_names, visible_accounts
from logs.models import CallType
from logs.periods import RECENT_PRESETS, recent_start
from logs.read.filters import (
    EARLIEST_YEAR,
    INVESTIGATION_READERS,
    LATEST_YEAR,
    STATUS_CHOICES,
    STREAMED_CHOICES,
    CallFilters,
    filter_calls,
    filter_moment,
    read_filter_value,
)
from logs.read.scope import end_user_names, end_user_seen, model_names, tag_names, visible_groups


def parse_user_datetime(raw: str, *, end_of_day: bool = False) -> datetime:
    """Read what a person typed: ``2026-11-28``, ``2026-11-28T09:30`` (the
    browser's datetime-local), ``2026-11-28 09:30:15`` or full ISO 8601 with a
    zone. Times without a zone are in the user's current time zone."""
    text = raw.strip()
    not_a_date = f"{quoted(raw)} is not a date and time (use YYYY-MM-DD HH:MM)"
    try:
        moment = parse_datetime(text.replace(" ", "T", 1)) if text else None
        day = parse_date(text) if text and moment is None else None
    except ValueError:
        # Well formed but not in the calendar (month 13, 30 February): Python's
        # own message ("month must be in 1..12") would not say what to type.
        raise ValueError(not_a_date) from None
    if moment is None:
        if day is None:
            raise ValueError(not_a_date)
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    if timezone.is_naive(moment):
        _refuse_an_ambiguous_or_missing_time(raw, moment)
        try:
            moment = timezone.make_aware(moment)
        except (OverflowError, ValueError):  # at the very ends of the calendar
            raise ValueError(
                f"{quoted(raw)} is outside the years {EARLIEST_YEAR} to {LATEST_YEAR}"
            ) from None
    try:
        return filter_moment(moment)
    except ValueError as exc:
        raise ValueError(f"{quoted(raw)} {exc}") from None


def _refuse_an_ambiguous_or_missing_time(raw: str, moment: datetime) -> None:
    """A local time that a daylight saving change repeats is two instants an
    hour apart, one it skips is none: reading it as either would add or drop
    up to an hour of calls unseen, so the person is asked for the offset (as
    the API's Django form fields refuse such a time too)."""
    zone = timezone.get_current_timezone()
    try:
        first, second = (moment.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
        offsets = first.utcoffset(), second.utcoffset()
    except (OverflowError, ValueError):
        return  # out of the calendar's range: the year check says so
    if offsets[0] == offsets[1]:
        return
    what = "is ambiguous" if first.astimezone(UTC) < second.astimezone(UTC) else "does not exist"
    offset_names = " or ".join(
        sorted({f"{aware:%z}"[:3] + ":" + f"{aware:%z}"[3:] for aware in (first, second)})
    )
    raise ValueError(
        f"“{raw}” {what} in {zone} (the clocks change then): add the offset you mean, "
        f"{offset_names}"
    )


class SelectsCalls:
    """A sidebar filter of the call list that says which calls it selects, as
    a part of ``CallFilters``: the list's count and totals, its deep pages,
    the stats page and the export all read that one selection
    (``logs.admin.changelist.changelist_call_filters``), never the queryset."""

    def call_filters(self) -> dict | None:
        """This filter's part of the CallFilters (None: its input is bad, nothing matches)."""
        raise NotImplementedError

    def queryset(self, request, queryset):
        # The rows come from the same selection as everything else reads, so
        # the list and its count, totals, stats and export cannot disagree.
        chosen = self.call_filters()
        if chosen is None:
            return queryset.none()
        return filter_calls(queryset, CallFilters(**chosen)) if chosen else queryset


class TimeRangeFilter(SelectsCalls, admin.ListFilter):
    """Start (inclusive) and end (exclusive) as two date-and-time inputs, or a
    recent span (``last=1h``) counted back from now. A date alone as the end
    includes that whole day: ``start=2026-12-01&end=2026-12-01`` is that day."""

    title = "time range"
    template = "admin/logs/filters/time_range.html"
    parameter_names = ("start", "end", "last")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameter_names:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]
        self.end_day_included = None
        self.start, self.end, self.error = self._parse()

    def _parse(self) -> tuple[datetime | None, datetime | None, str | None]:
        start = end = None
        raw_start = self.used_parameters.get("start", "").strip()
        raw_end = self.used_parameters.get("end", "").strip()
        raw_last = self.used_parameters.get("last", "")
        if raw_last.strip():
            if raw_start or raw_end:
                return (
                    None,
                    None,
                    (
                        "Time range: “last” counts back from now, so it takes no start or end; "
                        "give one or the other."
                    ),
                )
            try:
                return recent_start(raw_last, timezone.now()), None, None
            except ValueError as exc:
                return None, None, f"Time range last: {quoted(raw_last)} {exc}."
        try:
            start = parse_user_datetime(raw_start) if raw_start else None
        except ValueError as exc:
            return None, None, f"Time range start: {exc}."
        try:
            end = parse_user_datetime(raw_end) if raw_end else None
            day = parse_date(raw_end) if raw_end else None
            if day is not None:
                # A date alone as the end means "up to and including that day".
                self.end_day_included = day
                end = parse_user_datetime((day + timedelta(days=1)).isoformat())
        except ValueError as exc:
            return None, None, f"Time range end: {exc}."
        if start and end and end <= start:
            return None, None, "Time range: the end must be after the start."
        return start, end, None

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameter_names)

    @property
    def problem(self) -> Problem | None:
        """What the page says about this filter's input (the list shows it)."""
        if not self.error:
            return None
        return Problem(messages.ERROR, self.error + " No calls are shown until it is fixed.")

    def call_filters(self) -> dict | None:
        if self.error:
            return None
        return {"start": self.start, "end": self.end}

    def choices(self, changelist):
        # One "choice" carrying what the template's small form needs.
        tz_name = timezone.get_current_timezone_name()
        last = self.used_parameters.get("last", "")
        yield {
            "start": self.used_parameters.get("start", ""),
            "end": self.used_parameters.get("end", ""),
            "end_day_included": self.end_day_included,
            "error": self.error,
            "timezone": tz_name,
            "presets": [
                {
                    "value": value,
                    "label": label,
                    "short": value.replace("m", " min").replace("h", " h").replace("d", " d"),
                    "url": changelist.get_query_string({"last": value}, remove=["start", "end"]),
                    "selected": value == last,
                }
                for value, (_, label) in RECENT_PRESETS.items()
            ],
            "preset_label": RECENT_PRESETS[last][1] if last in RECENT_PRESETS else None,
            # The other filters as hidden inputs, one per value (the ChangeList
            # keeps each parameter as a list of values).
            "other_params": [
                (key, value)
                for key, values in changelist.get_filters_params().items()
                if key not in self.parameter_names
                for value in (values if isinstance(values, list) else [values])
            ]
            + [
                (key, changelist.params[key])
                for key in ("q", "o")
                if changelist.params.get(key) not in (None, "")
            ],
            "clear_query_string": changelist.get_query_string(remove=list(self.parameter_names)),
            "is_active": bool(self.used_parameters),
        }


class ScopedChoiceFilter(SelectsCalls, admin.SimpleListFilter):
    """A filter whose choices depend on what the user may see."""

    def scope(self, request, model_admin):
        return {"account": model_admin.scope_account(request)}

    def has_output(self) -> bool:
        # A value with no matching choice must still reach queryset(), which
        # says so and shows nothing, rather than be skipped (an unfiltered list).
        return super().has_output() or self.value() not in (None, "")

    def is_offered(self, value: str) -> bool:
        return value in {str(choice) for choice, _ in self.lookup_choices}

    @property
    def problem(self) -> Problem | None:
        """What the page says about this filter's value (the list shows it)."""
        value = self.value()
        if value in (None, "") or self.is_offered(value):
            return None
        return Problem(
            messages.WARNING,
            f"{self.title.capitalize()} {quoted(value)} is not one you can filter on here, "
            "so no calls match.",
        )

    def filters_for(self, value: str) -> CallFilters:
        raise NotImplementedError

    def call_filters(self) -> dict | None:
        value = self.value()
        if value in (None, ""):
            return {}
        if not self.is_offered(value):
            return None
        chosen = self.filters_for(value)
        return {
            f.name: getattr(chosen, f.name)
            for f in fields(chosen)
            if getattr(chosen, f.name) not in (None, "")
        }


class AccountFilter(ScopedChoiceFilter):
    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        accounts = visible_accounts(request.user)
        if model_admin.scope_account(request) is not None:
            return []  # the portal shows one account at a time
        return [(str(a.pk), a.name) for a in accounts]

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(account_id=int(value))


class ModelFilter(ScopedChoiceFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        return [
            (name, name) for name in model_names(request.user, **self.scope(request, model_admin))
        ]

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(model=value)


class KeyNameFilter(ScopedChoiceFilter):
    title = "key name"
    parameter_name = "key_name"

    def lookups(self, request, model_admin):
        return [
            (name, name) for name in key_names(request.user, **self.scope(request, model_admin))
        ]

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(key_name=value)


class GroupFilter(ScopedChoiceFilter):
    title = "group"
    parameter_name = "group"

    def lookups(self, request, model_admin):
        groups = visible_groups(request.user, **self.scope(request, model_admin))
        return [(g.name, g.name) for g in groups.order_by("name")]

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(group=value)


class CallTypeFilter(ScopedChoiceFilter):
    title = "call type"
    parameter_name = "call_type"

    def lookups(self, request, model_admin):
        return CallType.choices

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(call_type=value)


class StatusFilter(ScopedChoiceFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return STATUS_CHOICES

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(status=value)


# --- token accounting: the customer's own labels ------------------------------------


class TagFilter(ScopedChoiceFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(tag, tag) for tag in tag_names(request.user, **self.scope(request, model_admin))]

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(tag=value)


class EndUserFilter(ScopedChoiceFilter):
    """Lists the first end users by name; accepts any end user of the visible
    accounts (an account may have thousands: the call detail links to its end
    user's calls)."""

    title = "end user"
    parameter_name = "end_user"

    def lookups(self, request, model_admin):
        scope = self.scope(request, model_admin)
        self._seen = lambda value: end_user_seen(request.user, value, **scope)
        return [(name, name) for name in end_user_names(request.user, **scope)]

    def is_offered(self, value: str) -> bool:
        return super().is_offered(value) or ("\x00" not in value and self._seen(value))

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(end_user=value)


class StreamedFilter(ScopedChoiceFilter):
    title = "streamed"
    parameter_name = "streamed"

    def lookups(self, request, model_admin):
        return STREAMED_CHOICES

    def filters_for(self, value: str) -> CallFilters:
        return CallFilters(streamed=read_filter_value("streamed", value))


class DetailsFilter(SelectsCalls, admin.ListFilter):
    """Exact HTTP status, duration and cost thresholds, client IP and
    endpoint: typed values, read and refused like the API reads them
    (``logs.read.filters.read_filter_value``)."""

    title = "details"
    template = "admin/logs/filters/details.html"
    parameter_names = ("status_code", "slower_than_ms", "cost_above", "client_ip", "endpoint")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameter_names:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]
        self.values: dict = {}
        self.errors: dict[str, str] = {}
        for name in self.parameter_names:
            raw = self.used_parameters.get(name, "")
            try:
                value = read_filter_value(name, raw)
            except ValueError as exc:
                label = INVESTIGATION_READERS[name][0]
                self.errors[name] = f"{label} ({name}): {quoted(raw)} {exc}."
            else:
                if value is not None:
                    self.values[name] = value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameter_names)

    @property
    def problem(self) -> Problem | None:
        if not self.errors:
            return None
        return Problem(
            messages.ERROR,
            " ".join(self.errors.values()) + " No calls are shown until it is fixed.",
        )

    def call_filters(self) -> dict | None:
        return None if self.errors else dict(self.values)

    def choices(self, changelist):
        yield {
            "fields": [
                {
                    "name": name,
                    "label": INVESTIGATION_READERS[name][0],
                    "value": self.used_parameters.get(name, ""),
                    "error": self.errors.get(name),
                    "type": "number" if name in ("status_code", "slower_than_ms") else "text",
                }
                for name in self.parameter_names
            ],
            "other_params": [
                (key, value)
                for key, values in changelist.get_filters_params().items()
                if key not in self.parameter_names
                for value in (values if isinstance(values, list) else [values])
            ]
            + [
                (key, changelist.params[key])
                for key in ("q", "o")
                if changelist.params.get(key) not in (None, "")
            ],
            "clear_query_string": changelist.get_query_string(remove=list(self.parameter_names)),
            "is_active": bool(self.used_parameters),
        }
