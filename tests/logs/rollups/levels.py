"""What the rollup levels hold, as values to compare: incremental upkeep,
folding, rebuilding and pruning must leave the same rows."""

from django.forms.models import model_to_dict

from logs.models import COARSE_ROLLUP_LEVELS, FINE_ROLLUP_LEVELS, HourlyCallRollup

ALL_LEVELS = (HourlyCallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS)


def level_rows(level) -> list[tuple]:
    """Every row of ``level``, without its id, in a fixed order."""
    return sorted(
        tuple(sorted((k, str(v)) for k, v in model_to_dict(row).items() if k != "id"))
        for row in level.objects.all()
    )


def all_levels() -> dict[str, list[tuple]]:
    return {level.__name__: level_rows(level) for level in ALL_LEVELS}
