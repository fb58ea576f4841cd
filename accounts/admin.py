"""Admin pages for accounts, memberships, pricing groups and API keys."""

from django.contrib import admin, messages

from accounts.models import Account, ApiKey, Group, Membership
from accounts.services import create_api_key, revoke_api_key


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline,)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "account", "role", "created_at")
    list_filter = ("role", "account")
    search_fields = ("user__username", "account__name")
    autocomplete_fields = ("user", "account")


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "price_ratio", "description")
    search_fields = ("name",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "account",
        "group",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("group", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "account__name")
    list_select_related = ("account", "group")
    autocomplete_fields = ("account",)
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke_selected",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("account", "name", "group")
        return ("account", "name", "group", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("account", *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = create_api_key(account=obj.account, name=obj.name, group=obj.group)
        obj.pk = issued.api_key.pk
        obj.prefix = issued.api_key.prefix
        messages.warning(
            request,
            f"The new key is {issued.secret} — copy it now: it is stored only as a hash "
            "and will not be shown again.",
        )

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
