import pytest

from hieramp.analyze.schedules import BASELINE, Schedule, parse_schedule, parse_schedules
from hieramp.errors import UserError
from hieramp.model.amp_config import AmpConfig
from hieramp.model.config import tiny_var


def test_paper_schedules_parse_in_order():
    got = parse_schedules("none;5;5,5,0.5;0.5,5,5;5,0.5,5")
    assert [s.name for s in got] == ["none", "5", "5,5,0.5", "0.5,5,5", "5,0.5,5"]
    assert [s.beta for s in got] == [None, (5.0,), (5.0, 5.0, 0.5), (0.5, 5.0, 5.0), (5.0, 0.5, 5.0)]


def test_names_are_canonical_and_spaces_and_a_trailing_semicolon_are_allowed():
    got = parse_schedules(" NONE ; 5.0 ; 5, 5 ,0.50 ;")
    assert [s.name for s in got] == ["none", "5", "5,5,0.5"]


def test_the_baseline_comes_first_and_is_added_when_missing():
    assert parse_schedules("5;none;2") == [BASELINE, Schedule("5", (5.0,)), Schedule("2", (2.0,))]
    assert parse_schedules("5,5,0.5")[0] == BASELINE


FORMS = "three stage betas coarse,mid,fine"


@pytest.mark.parametrize("text, message, fix", [
    ("", "no schedules given", FORMS),
    ("5;;2", "empty schedule", FORMS),
    ("5;strong", "bad schedule 'strong'", FORMS),
    ("5;5,0.5", "bad schedule '5,0.5': it has 2 betas", FORMS),
    ("1,2,3,4", "it has 4 betas", FORMS),
    ("5;nan", "bad schedule 'nan': betas must be finite", FORMS),
    ("5;inf,1,1", "must be finite", FORMS),
    ("5;5.0", "schedule 5 is given twice", "list each schedule once"),
])
def test_bad_schedules_are_refused_naming_the_bad_part_and_the_fix(text, message, fix):
    with pytest.raises(UserError, match=message) as err:
        parse_schedules(text)
    assert fix in str(err.value) and "\n" not in str(err.value)


def test_a_schedule_overrides_only_beta():
    base = AmpConfig(mode="weight", beta=9.0, rho=(0.25, 0.5, 0.75), layers=(1,), scales=(2, 3))
    amp = parse_schedule("5,5,0.5").amp_config(base)
    assert amp == AmpConfig(mode="weight", beta=(5.0, 5.0, 0.5), rho=(0.25, 0.5, 0.75), layers=(1,), scales=(2, 3))
    assert BASELINE.amp_config(base).resolve(tiny_var()) is None


def test_stage_betas_spread_over_four_scales_one_stage_each():
    plan = parse_schedule("5,2,0.5").amp_config(AmpConfig(layers=(1,))).resolve(tiny_var())
    assert plan.beta == (5.0, 5.0, 2.0, 0.5)                         # scale 0 (one token) is not amplified
    assert plan.scales == (1, 2, 3)
