"""Scenes from Python: the same parser, validation and positioned messages as the CLI."""

import neurograph
import pytest


def test_a_bad_value_raises_scene_error_with_file_line_column_and_field():
    text = "Scene(\n    architecture: (total_nodes: -3),\n)"
    with pytest.raises(neurograph.SceneError) as e:
        neurograph.parse_scene(text, "bad.ron")
    # Line 2, column 33 is where `-3` starts.
    assert "bad.ron:2:33" in str(e.value)
    assert "architecture.total_nodes" in str(e.value)


def test_an_unknown_field_is_named():
    with pytest.raises(neurograph.SceneError) as e:
        neurograph.parse_scene("Scene(forward: (decay_rate: 0.5))", "typo.ron")
    assert "typo.ron:1:" in str(e.value)
    assert "decay_rate" in str(e.value)


def test_an_out_of_range_set_names_the_allowed_range(small_scene):
    with pytest.raises(neurograph.SceneError) as e:
        neurograph.load_scene(small_scene, sets={"forward.decay": 7.0})
    message = str(e.value)
    assert "forward.decay" in message
    assert "7" in message


def test_a_missing_file_is_a_scene_error(tmp_path):
    with pytest.raises(neurograph.SceneError) as e:
        neurograph.load_scene(tmp_path / "nope.ron")
    assert "nope.ron" in str(e.value)


def test_scene_errors_are_neurograph_errors():
    assert issubclass(neurograph.SceneError, neurograph.NeurographError)


def test_sets_change_the_resolved_scene_and_to_ron_round_trips(small_scene):
    scene = neurograph.load_scene(small_scene, sets={"seed": 99, "forward.decay": 0.25})
    assert scene.seed == 99
    again = neurograph.parse_scene(scene.to_ron())
    assert again.to_ron() == scene.to_ron()
    assert "decay: 0.25" in scene.to_ron()
