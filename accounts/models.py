"""Who calls the gateway: customers (accounts), their people, pricing groups and API keys."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    """Where an account or key was first seen, when a gateway's own records
    brought it in rather than a person creating it here."""

    LOCAL = "", "Created here"
    LITELLM = "litellm", "LiteLLM"
    NEWAPI = "newapi", "new-api"
    ONEAPI = "oneapi", "one-api"
    OPENTELEMETRY = "otel", "OpenTelemetry"


class Account(models.Model):
    """A customer of the gateway. Every call, key and owner belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.LOCAL, blank=True, editable=False
    )
    external_id = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="The source's own id of this account (a LiteLLM team id, a new-api user id).",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(source=""),
                name="account_source_external_id_uniq",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A Django user's place in an account. A user may belong to several accounts."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OWNER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="membership_user_account_uniq")
        ]
        ordering = ["account__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.get_role_display()})"


class Group(models.Model):
    """A pricing group (default, vip, …). Its ratio multiplies a model's base price."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    price_ratio = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))],
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "pricing group"

    def __str__(self) -> str:
        return self.name


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A gateway API key.

    Only a short public prefix (enough to recognise the key in logs and to find
    it on ingest) and a SHA-256 hash of the whole secret are stored; the full
    key is shown once, by ``accounts.services.create_api_key``. Keys that calls
    refer to are revoked, never deleted (the foreign keys from calls PROTECT).
    """

    PREFIX_LENGTH = 12  # "sk-" plus 9 characters of the random part

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="api_keys")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.LOCAL, blank=True, editable=False
    )
    external_id = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="The source's own id of this key (LiteLLM's key hash, a new-api token id).",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["account__name", "name"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="apikey_account_name_uniq"),
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(source=""),
                name="apikey_source_external_id_uniq",
            ),
        ]
        indexes = [models.Index(fields=["name"], name="apikey_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AccessTokenQuerySet(models.QuerySet):
    def active(self) -> "AccessTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class AccessToken(models.Model):
    """A personal access token for the REST API.

    Like API keys, only a public prefix and a SHA-256 hash are stored; the
    token is shown once. ``can_ingest`` lets a service user write calls; an
    account owner's token never can (see ``accounts.services.create_access_token``).
    """

    SCHEME = "ult_"
    PREFIX_LENGTH = 12

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    can_ingest = models.BooleanField(
        default=False, help_text="May write calls through POST /api/v1/calls/ingest/."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API access token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class UserPreference(models.Model):
    """What one login chose for the pages: the time zone they show times in
    (blank: the site's, ``TIME_ZONE``). Filters typed without an offset and
    the hours and days of usage stats follow it too; the API and CSV exports
    do not (they say which zone they use)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_preference"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="An IANA zone (Europe/Berlin); blank: the site's.",
    )

    def __str__(self) -> str:
        return f"preferences of {self.user}"
