"""The typed manifest row (`avrep.data.recipes.ClipRow`): its fields are the columns, and the single-video row
`avrep preprocess VIDEO` uses goes through the recipes' finishing step unchanged; `avrep prepare` has one
subcommand per recipe of the registry (`RECIPES`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avrep.data.recipes import COLUMNS, ClipRow, finalize, single_video_manifest


def test_clip_row_is_the_manifest_columns():
    assert COLUMNS[:2] == ["clip_id", "path"] and len(COLUMNS) == 10
    assert list(ClipRow("a", "a.mp4").to_dict()) == COLUMNS


def test_single_video_row(tmp_path):
    v = tmp_path / "talk.mp4"
    r = ClipRow.single_video(v)
    assert (r.clip_id, r.path, r.speaker, r.split, r.start_frame, r.end_frame) == (
        "talk",
        str(v.resolve()),
        "unknown",
        "test",
        0,
        -1,
    )
    assert ClipRow.single_video(v, speaker="s1").speaker == "s1"
    df = single_video_manifest(v)
    assert df.to_dict("records") == [r.to_dict()]
    fin = finalize([r.to_dict()], tmp_path)
    assert fin.loc[0, "clip_id"] == "talk" and fin.loc[0, "word_id"] == -1 and Path(fin.loc[0, "path"]).name == v.name
    with pytest.raises(TypeError):
        ClipRow.single_video(v, colour="red")


def test_prepare_has_one_subcommand_per_registered_recipe():
    from avrep.commands.prepare import prepare
    from avrep.data.recipe_registry import RECIPES, get_recipe
    from avrep.errors import AvrepError

    assert set(prepare.commands) == set(RECIPES)
    assert all(get_recipe(n).__name__ == f"prepare_{n}" for n in RECIPES)
    with pytest.raises(AvrepError, match="recipe 'timit'"):
        get_recipe("timit")
