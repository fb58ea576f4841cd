"""Read-only admin pages about the data rather than in it: who read calls
(access records), when calls were pruned, how far behind rollup folding is."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin_lists import CheckedListMixin
from accounts.scoping import reads_every_account
from logs.models import AccessRecord, FoldStatus, PruneRun
from logs.rollups.fold import fold_lag


@admin.register(AccessRecord)
class AccessRecordAdmin(CheckedListMixin, admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PruneRun)
class PruneRunAdmin(CheckedListMixin, admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FoldStatus)
class FoldStatusAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Waiting to be folded")
    def waiting(self, status: FoldStatus) -> str:
        lag = fold_lag()
        if not lag["pending_deltas"]:
            return "nothing"
        return (
            f"{lag['pending_deltas']:,} deltas, the oldest for "
            f"{lag['oldest_pending_seconds']:,.1f} s"
        )
