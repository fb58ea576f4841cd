"""Admin pages for accounts, memberships, pricing groups and API keys."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group as UserGroup
from django.contrib.auth.models import User

from accounts.admin_lists import CheckedListMixin, ReadOnlyAdminMixin
from accounts.models import AccessToken, Account, ApiKey, Group, Membership
from accounts.scoping import visible_keys
from accounts.services import (
    create_access_token,
    create_api_key,
    is_service_user,
    revoke_access_token,
    revoke_api_key,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Account)
class AccountAdmin(CheckedListMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "source", "is_active", "created_at")
    list_filter = ("source",)
    search_fields = ("name", "slug", "=external_id")
    readonly_fields = ("source", "external_id")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline,)


@admin.register(Membership)
class MembershipAdmin(CheckedListMixin, admin.ModelAdmin):
    list_display = ("user", "account", "role", "created_at")
    list_filter = ("role", "account")
    search_fields = ("user__username", "account__name")
    autocomplete_fields = ("user", "account")


@admin.register(Group)
class GroupAdmin(CheckedListMixin, admin.ModelAdmin):
    list_display = ("name", "price_ratio", "description")
    search_fields = ("name",)


@admin.register(ApiKey)
class ApiKeyAdmin(CheckedListMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "account",
        "group",
        "source",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("group", "source", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "account__name", "=external_id")
    list_select_related = ("account", "group")
    autocomplete_fields = ("account",)
    readonly_fields = (
        "prefix",
        "source",
        "external_id",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke_selected",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("account", "name", "group")
        return ("account", "name", "group", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("account", *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = create_api_key(account=obj.account, name=obj.name, group=obj.group)
        show_secret_once(request, obj, issued.api_key, issued.secret, "key")

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class AccessTokenAddForm(forms.ModelForm):
    class Meta:
        model = AccessToken
        fields = ("user", "name", "can_ingest")

    def clean(self):
        cleaned = super().clean()
        user = cleaned.get("user")
        if cleaned.get("can_ingest") and user is not None and not is_service_user(user):
            self.add_error(
                "can_ingest",
                "Only a service user (with the “Can ingest call records” permission and no "
                "account membership) may hold an ingest token.",
            )
        return cleaned


@admin.register(AccessToken)
class AccessTokenAdmin(CheckedListMixin, admin.ModelAdmin):
    """Staff create tokens for anyone, including ingest tokens for service users."""

    list_display = (
        "name",
        "prefix",
        "user",
        "can_ingest",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("can_ingest", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "=prefix", "user__username")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = ("revoke_selected",)
    add_form = AccessTokenAddForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_form.Meta.fields
        return ("user", "name", "prefix", "can_ingest", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "prefix", "can_ingest", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = create_access_token(user=obj.user, name=obj.name, can_ingest=obj.can_ingest)
        show_secret_once(request, obj, issued.token, issued.secret, "token")

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset):
        for token in queryset:
            revoke_access_token(token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


def show_secret_once(request, obj, saved, secret: str, noun: str) -> None:
    """Point the admin's unsaved form object at the row the service created, and
    show the secret in a message: the only time anyone sees it."""
    obj.pk = saved.pk
    obj.prefix = saved.prefix
    obj._state.adding = False
    messages.warning(
        request,
        f"The new {noun} is {secret} — copy it now: it is stored only as a hash "
        "and will not be shown again.",
    )


# Django's own lists of users and permission groups answer bad query strings
# like every other list here.
admin.site.unregister(User)
admin.site.unregister(UserGroup)


@admin.register(User)
class UserAdmin(CheckedListMixin, auth_admin.UserAdmin):
    pass


@admin.register(UserGroup)
class UserGroupAdmin(CheckedListMixin, auth_admin.GroupAdmin):
    pass


# --- the account owners' portal (registered in usagelogs_site/portal.py) ------------


class PortalApiKeyAdmin(ReadOnlyAdminMixin, CheckedListMixin, admin.ModelAdmin):
    """An owner's own keys, read-only: names, prefixes, group, use and revocation."""

    list_display = ("name", "prefix", "group", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("group",)
    fields = list_display
    readonly_fields = list_display
    search_fields = ("name", "=prefix")
    actions = None

    def get_queryset(self, request):
        account = self.admin_site.current_account(request)
        return visible_keys(request.user, account=account).select_related("group")

    def has_view_permission(self, request, obj=None) -> bool:
        return self.admin_site.current_account(request) is not None

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


class PortalAccessTokenAdmin(CheckedListMixin, admin.ModelAdmin):
    """An owner's personal access tokens for reading the API (never ingest)."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    search_fields = ("name",)
    actions = ("revoke_selected",)

    def get_queryset(self, request):
        return AccessToken.objects.filter(user=request.user)

    def get_fields(self, request, obj=None):
        return ("name",) if obj is None else self.list_display

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.list_display

    def has_view_permission(self, request, obj=None) -> bool:
        return self.admin_site.current_account(request) is not None

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        issued = create_access_token(user=request.user, name=obj.name, can_ingest=False)
        show_secret_once(request, obj, issued.token, issued.secret, "token")

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset):
        for token in queryset:
            revoke_access_token(token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
