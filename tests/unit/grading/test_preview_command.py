"""``mastery grading preview``: a method's result on bare scores, for a
teacher choosing a policy."""

from __future__ import annotations

from typing import Any

import msgspec
from click.testing import CliRunner

from mastery_grading.cli import command


def preview(*arguments: str) -> tuple[int, str]:
    """Run ``mastery grading preview`` with ``arguments``; return its exit
    code and everything it printed."""
    result = CliRunner().invoke(command, ["preview", *arguments])
    return result.exit_code, result.output


def test_the_preview_prints_score_level_and_explanation() -> None:
    """A decaying average of 1-5 at 0.65 on the five-level scale reads
    4.47, Proficient, mastered, with the method, scale and scores named."""
    code, output = preview(
        "decaying_average",
        "1",
        "2",
        "3",
        "4",
        "5",
        "--weight",
        "0.65",
        "--scale",
        "five-level",
    )

    assert code == 0
    assert output.splitlines() == [
        "method: decaying_average (weight 0.65)",
        "scale: five-level v1, 1 to 5, mastery at 4",
        "scores, oldest first: 1 2 3 4 5",
        "score: 4.47 (unrounded 4.46962)",
        "level: 4 Proficient",
        "mastered: yes",
    ]


def test_the_json_preview_is_the_whole_result() -> None:
    """--json prints the weighted average's 4.125 with its level and the
    explanation a script can read."""
    code, output = preview(
        "weighted_average",
        "1",
        "2",
        "3",
        "4",
        "5",
        "--weight",
        "0.65",
        "--scale",
        "five-level",
        "--json",
    )
    printed: dict[str, Any] = msgspec.json.decode(output)

    assert code == 0
    assert printed["status"] == "scored"
    assert printed["score"] == 4.125
    assert printed["level"] == {"value": 4.0, "label": "Proficient", "cut": 3.5}
    assert printed["explanation"]["method"] == "weighted_average"
    assert printed["explanation"]["parameters"]["weight"] == 0.65
    assert printed["explanation"]["scale"]["name"] == "five-level"
    assert printed["explanation"]["scores"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_the_default_scale_is_four_levels_from_one() -> None:
    """Without --scale, the mean of 2 and 3 is 2.5: Proficient on 1-4."""
    code, output = preview("mean", "2", "3")

    assert code == 0
    assert "scale: four-level v1, 1 to 4, mastery at 3" in output
    assert "level: 3 Proficient" in output


def test_a_mode_tie_follows_the_tie_option() -> None:
    """4, 4, 2, 2 is a tie: higher gives 4, recent gives 2."""
    _, higher = preview("mode", "4", "4", "2", "2")
    _, recent = preview("mode", "4", "4", "2", "2", "--tie", "recent")

    assert "score: 4\n" in higher
    assert "score: 2\n" in recent


def test_a_threshold_option_moves_the_mastery_bar() -> None:
    """A 3 is mastery at the default bar of 3, and not yet at 3.5."""
    _, default = preview("most_recent", "3")
    _, raised = preview("most_recent", "3", "--threshold", "3.5")

    assert "mastered: yes" in default
    assert "mastered: not yet" in raised
    assert "mastery at 3.5" in raised


def test_n_times_below_n_says_there_is_no_score_yet() -> None:
    """Two scores at or above 3 of the three n_times needs: no score."""
    code, output = preview("n_times", "3", "2", "4", "--n", "3")

    assert code == 0
    assert output.splitlines()[-1] == (
        "result: not enough evidence yet: 2 of the 3 scores at or above 3 "
        "that n_times needs"
    )


def test_power_law_takes_a_zero_on_the_zero_to_four_scale() -> None:
    """0, 1, 2, 3 fits on score + 1, and predicts 3 at attempt 4."""
    code, output = preview("power_law", "0", "1", "2", "3", "--scale", "zero-to-four")

    assert code == 0
    assert "method: power_law (offset 1)" in output
    assert "score: 3\n" in output


def test_a_weight_out_of_range_is_refused_naming_the_option() -> None:
    """0.4 is below the decaying average's 0.50: a usage error on --weight."""
    code, output = preview("decaying_average", "1", "2", "--weight", "0.4")

    assert code == 2
    assert "Invalid value for --weight" in output
    assert "0.50 to 0.99" in output


def test_a_score_off_the_scale_is_refused_naming_the_scores() -> None:
    """A 5 on the four-level scale is a usage error on SCORE."""
    code, output = preview("highest", "3", "5")

    assert code == 2
    assert "Invalid value for SCORE: 5 lies outside the scale four-level" in output


def test_an_unknown_method_is_refused_with_the_choices() -> None:
    """'average' is not a method; the message lists the ones there are."""
    code, output = preview("average", "3")

    assert code == 2
    assert "decaying_average" in output
