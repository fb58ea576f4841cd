"""The resource django-import-export's Export CSV button is declared with.

The export view itself (``CallRecordAdmin.export_action``) streams the file of
``logs.read.export``; import-export contributes its URL, button and permission.
"""

from import_export import resources

from logs.models import CallRecord


class CallRecordResource(resources.ModelResource):
    class Meta:
        model = CallRecord
        fields = ("id",)
