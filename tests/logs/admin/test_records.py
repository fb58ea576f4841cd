"""The records the application writes (access records, prune runs, the fold
status, import runs) are shown in the admin and never added, changed or
deleted there, not even by a superuser."""

from __future__ import annotations

import pytest

from logs.models import FoldStatus

pytestmark = pytest.mark.django_db

WRITTEN_BY_THE_APPLICATION = ("accessrecord", "prunerun", "foldstatus", "importrun")


@pytest.mark.parametrize("model", WRITTEN_BY_THE_APPLICATION)
def test_a_superuser_may_list_but_not_add_them(superuser_client, model):
    listing = superuser_client.get(f"/admin/logs/{model}/")
    adding = superuser_client.get(f"/admin/logs/{model}/add/")
    posting = superuser_client.post(f"/admin/logs/{model}/add/", {})

    assert listing.status_code == 200
    assert f"/admin/logs/{model}/add/".encode() not in listing.content
    assert adding.status_code == 403
    assert posting.status_code == 403


def test_the_fold_status_cannot_be_deleted(superuser_client):
    status, _ = FoldStatus.objects.get_or_create(pk=1)  # the one row folding keeps

    response = superuser_client.post(f"/admin/logs/foldstatus/{status.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert FoldStatus.objects.filter(pk=status.pk).exists()
