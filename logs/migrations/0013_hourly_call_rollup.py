"""The hourly level is named for what it is: CallRollup -> HourlyCallRollup
(its table logs_callrollup -> logs_hourlycallrollup; indexes and constraints
keep their names)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("logs", "0012_pending_rollup_deltas"),
    ]

    operations = [
        migrations.RenameModel(old_name="CallRollup", new_name="HourlyCallRollup"),
    ]
