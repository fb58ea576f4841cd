"""Read-only admin pages about the data rather than in it: who read calls
(access records), when calls were pruned, how far behind rollup folding is,
how history imports went."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from accounts.admin_lists import CheckedListMixin, ReadOnlyAdminMixin
from accounts.scoping import reads_every_account
from logs.models import AccessRecord, FoldStatus, ImportRun, PruneRun
from logs.read.imports import in_state
from logs.rollups.fold import fold_lag


@admin.register(AccessRecord)
class AccessRecordAdmin(ReadOnlyAdminMixin, CheckedListMixin, admin.ModelAdmin):
    """Who read customers' calls. Superusers only; nobody can change it."""

    list_display = ("at", "username", "action", "surface", "request_id", "row_count")
    list_filter = ("action", "surface")
    search_fields = ("=username", "=request_id")
    date_hierarchy = "at"
    show_full_result_count = False
    actions = None

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


@admin.register(PruneRun)
class PruneRunAdmin(ReadOnlyAdminMixin, CheckedListMixin, admin.ModelAdmin):
    """When calls were pruned and up to when: why a call list starts where it
    does while usage stats go further back. Written only by ``prune_calls``."""

    list_display = ("ran_at", "cutoff", "calls_deleted", "partitions_dropped")
    date_hierarchy = "ran_at"
    actions = None

    # Whoever may read the call list may see why it begins where it does.
    def has_view_permission(self, request, obj=None) -> bool:
        return reads_every_account(request.user)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


@admin.register(FoldStatus)
class FoldStatusAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """How far behind folding pending rollup deltas is. Totals and stats are
    exact either way; a long backlog only makes them slower."""

    list_display = (
        "waiting",
        "last_fold_at",
        "last_fold_deltas",
        "last_fold_ms",
        "folds",
        "deltas_folded",
    )
    list_display_links = None
    actions = None

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.has_perm("logs.view_callrecord")

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    @admin.display(description="Waiting to be folded")
    def waiting(self, status: FoldStatus) -> str:
        lag = fold_lag()
        if not lag["pending_deltas"]:
            return "nothing"
        return (
            f"{lag['pending_deltas']:,} deltas, the oldest for "
            f"{lag['oldest_pending_seconds']:,.1f} s"
        )


class ImportRunStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state, state) for state in ImportRun.STATES]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return in_state(queryset, self.value(), timezone.now())


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, CheckedListMixin, admin.ModelAdmin):
    """History imports (``manage.py import_history``): where each source stands.
    Staff only (the portal has no such page); written only by the import."""

    list_display = (
        "kind",
        "location",
        "state",
        "started_at",
        "finished_at",
        "imported",
        "already_present",
        "skipped_by_kind",
        "refused",
        "rate",
    )
    list_filter = (ImportRunStateFilter, "kind")
    ordering = ("-started_at",)
    date_hierarchy = "started_at"
    actions = None
    fields = (
        "kind",
        "location",
        "state",
        "started_at",
        "updated_at",
        "finished_at",
        "stopped_by",
        "imported",
        "already_present",
        "skipped_by_kind",
        "refused",
        "rate",
        "checkpoint",
    )
    readonly_fields = fields

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.has_perm("logs.view_importrun")

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    @admin.display(description="state")
    def state(self, run: ImportRun) -> str:
        return run.state(timezone.now())

    @admin.display(description="skipped")
    def skipped_by_kind(self, run: ImportRun) -> str:
        if not run.skipped:
            return "0"
        kinds = ", ".join(f"{kind}: {count:,}" for kind, count in sorted(run.skipped.items()))
        return f"{run.skipped_total:,} ({kinds})"

    @admin.display(description="rows/s")
    def rate(self, run: ImportRun) -> str:
        rate = run.rate
        return "—" if rate is None else f"{rate:,.0f}"
