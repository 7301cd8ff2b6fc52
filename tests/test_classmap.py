"""Class maps: the text form, --classes names, and applying a map to a label image."""
import numpy
import pytest

from fcnlite.data.classmap import DRIVING_CLASSES, ClassMap, class_map_from_names, parse_class_map


def test_driving_classes_follow_the_simulator_ids():
    assert len(DRIVING_CLASSES) == 13
    assert DRIVING_CLASSES[6] == "road_line"
    assert DRIVING_CLASSES[7] == "road"
    assert DRIVING_CLASSES[10] == "vehicle"


def test_parse_pairs_and_star_maps_every_value():
    class_map = parse_class_map("7:1,6:1,*:0")
    labels = numpy.array([[0, 6, 7], [8, 12, 200]], dtype=numpy.uint8)
    assert class_map.apply(labels).tolist() == [[0, 1, 1], [0, 0, 0]]
    assert class_map.n_classes == 2
    assert class_map.class_names == ["background", "7+6"]


def test_parse_uses_source_names_for_tokens_and_output_names():
    class_map = parse_class_map("road:1, Road_Line:1, *:0", DRIVING_CLASSES)
    assert class_map.mapping == {7: 1, 6: 1}
    assert class_map.class_names == ["background", "road+road_line"]


def test_ignore_targets_and_255_stays_255_unless_named():
    class_map = parse_class_map("7:1,6:ignore,*:0")
    labels = numpy.array([7, 6, 3, 255], dtype=numpy.uint8)
    assert class_map.apply(labels).tolist() == [1, 255, 0, 255]
    assert parse_class_map("7:1,255:0,*:0").apply(labels).tolist() == [1, 0, 0, 0]
    assert parse_class_map("7:1,6:255,*:0").apply(labels).tolist() == [1, 255, 0, 255]


@pytest.mark.parametrize("word", ["ignore", "void", "VOID", "Ignore"])
def test_a_class_map_takes_the_words_a_colour_table_takes_for_ignore(tmp_path, word):
    from fcnlite.data.folder import load_color_table
    table_file = tmp_path / "colors.json"
    table_file.write_text(f'{{"road": [1, 1, 1], "{word} ": [2, 2, 2], "car": [3, 3, 3], "tree": [4, 4, 4]}}')
    assert load_color_table(table_file).values.tolist() == [0, 255, 1, 2]
    class_map = parse_class_map(f"road:road,car:car,tree:{word},*:background", DRIVING_CLASSES + ["car", "tree"])
    assert class_map.class_names == ["background", "road", "car"]
    assert class_map.apply(numpy.array([7, 13, 14, 0], dtype=numpy.uint8)).tolist() == [1, 2, 255, 0]


@pytest.mark.parametrize("word", ["ignored", "IGNORED", "_ignore_", "voids"])
def test_a_word_that_reads_like_ignore_is_refused_not_made_a_class(tmp_path, word):
    from fcnlite.data.errors import DataError
    from fcnlite.data.folder import load_color_table
    with pytest.raises(ValueError, match=f"target '{word}' in '3:{word}' reads like 'ignore': write 'ignore'"):
        parse_class_map(f"1:road,3:{word},*:background")
    table_file = tmp_path / "colors.json"
    table_file.write_text(f'{{"road": [1, 1, 1], "{word}": [2, 2, 2]}}')
    with pytest.raises(DataError, match=f"class '{word}' reads like 'ignore': name it 'ignore' or 'void'"):
        load_color_table(table_file)


def test_a_numbered_class_map_that_skips_a_class_is_warned_of(capsys):
    import argparse
    from fcnlite.data.options import class_map_from_args
    class_map = class_map_from_args(argparse.Namespace(class_map="road:1,car:3,*:0", classes=None),
                                    ["background", "road", "car", "tree"])
    assert class_map.n_classes == 4
    assert capsys.readouterr().out == ("warning: --class-map 'road:1,car:3,*:0' sends no value to class 2, which the "
                                       "model gets all the same and never sees: number the classes without a gap, "
                                       "unless that is meant\n")
    class_map_from_args(argparse.Namespace(class_map="road:1,car:2,*:0", classes=None), ["background", "road", "car"])
    assert capsys.readouterr().out == ""


def test_a_chosen_source_class_named_background_is_part_of_the_background_not_a_second_one():
    source = ["background", "road", "car"]   # a colour table's classes, say
    class_map = class_map_from_names(["background", "road"], source)
    assert class_map.class_names == ["background", "road"]
    assert class_map.apply(numpy.array([0, 1, 2], dtype=numpy.uint8)).tolist() == [0, 1, 0]
    kept = class_map_from_names(["Background", "road"], source, others="ignore")   # no rest class to merge into
    assert kept.class_names == ["background", "road"]
    assert kept.apply(numpy.array([0, 1, 2], dtype=numpy.uint8)).tolist() == [0, 1, 255]
    # a numbered map names the class only the rest reaches otherwise than a class it maps
    assert parse_class_map("0:1,*:0", source).class_names == ["other", "background"]


def test_a_class_map_never_makes_two_classes_of_one_name():
    with pytest.raises(ValueError, match="class map makes two classes named 'road': each class needs a name"):
        ClassMap({1: 1, 2: 2}, ["background", "road", "Road"])


def test_unmapped_value_without_star_is_an_error_naming_the_value():
    class_map = parse_class_map("7:1,8:0")
    with pytest.raises(ValueError, match=r"value 3 is not in the class map"):
        class_map.apply(numpy.array([7, 8, 3, 9], dtype=numpy.uint8))


def test_apply_is_one_table_lookup_for_a_whole_image():
    class_map = parse_class_map("1:2,2:1,*:0")
    labels = numpy.random.default_rng(0).integers(0, 4, size=(64, 64)).astype(numpy.uint8)
    expected = numpy.where(labels == 1, 2, numpy.where(labels == 2, 1, 0))
    assert numpy.array_equal(class_map.apply(labels), expected)
    assert class_map(labels).dtype == numpy.uint8


def test_describe_round_trips():
    class_map = parse_class_map("7:1,6:ignore,*:0")
    assert class_map.describe() == "7:1,6:ignore,*:0"
    assert parse_class_map(class_map.describe()).mapping == class_map.mapping


@pytest.mark.parametrize("text, message", [
    ("", "class map is empty"),
    ("7", "'7' is not a 'source:target' pair"),
    ("7:1:2", "'7:1:2' is not a 'source:target' pair"),
    ("7:", "'7:' is missing its source or its target"),
    ("x:1", "source 'x' is not a number"),
    ("300:1", "source '300' is out of range"),
    ("7:1,*:other", "'7:1' has a class number and '*:other' a class name"),
    ("7:-1", "target '-1' in '7:-1' is not a class index 0..254, 'ignore' or a class name"),
    ("7:1.5,*:0", "target '1.5' in '7:1.5' is not a class index"),
    ("7:+2", "target '\\+2' in '7:\\+2' is not a class index"),
    ("\u00b2:1", "source '\u00b2' is not a number 0..255"),
    ("7:256", "target '256' in '7:256' is out of range"),
    ("7:1,7:0", "source '7' appears twice"),
    ("*:0,7:1,*:1", "'*' appears twice"),
    ("7:ignore,*:ignore", "sends everything to ignore"),
])
def test_parse_errors_say_which_token_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")) as caught:
        parse_class_map(text)
    assert "\n" not in str(caught.value)


def test_named_targets_name_the_classes_they_make():
    class_map = parse_class_map("0:background,255:foreground")
    assert class_map.class_names == ["background", "foreground"]
    assert class_map.apply(numpy.array([0, 255, 0], dtype=numpy.uint8)).tolist() == [0, 1, 0]
    assert class_map.describe() == "0:background,255:foreground"


def test_named_targets_number_the_rest_first_then_in_order_of_appearance():
    class_map = parse_class_map("road:road, road_line:road, vehicle:car, pole:ignore, *:background", DRIVING_CLASSES)
    assert class_map.class_names == ["background", "road", "car"]
    labels = numpy.array([7, 6, 10, 5, 0, 255], dtype=numpy.uint8)
    assert class_map.apply(labels).tolist() == [1, 1, 2, 255, 0, 255]
    again = parse_class_map(class_map.describe(), DRIVING_CLASSES)
    assert again.mapping == class_map.mapping and again.class_names == class_map.class_names


def test_named_targets_match_whatever_their_case_and_keep_the_first_spelling():
    class_map = parse_class_map("0:Background,1:Road,2:road,*:background")
    assert class_map.class_names == ["background", "Road"]   # '*' first: its spelling names class 0
    assert class_map.apply(numpy.array([0, 1, 2, 3], dtype=numpy.uint8)).tolist() == [0, 1, 1, 0]


def test_names_that_only_resemble_numbers_are_names():
    assert parse_class_map("0:background,1:inf,2:nan,3:e1").class_names == ["background", "inf", "nan", "e1"]


def test_named_targets_and_given_names_together_are_refused():
    with pytest.raises(ValueError, match="names its classes, and names were given besides"):
        parse_class_map("0:background,255:foreground", class_names=["a", "b"])


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"source 'rode' is neither a number nor a class name \(unlabeled, "):
        parse_class_map("rode:1,*:0", DRIVING_CLASSES)


def test_classes_by_name_with_background():
    class_map = class_map_from_names(["road"], DRIVING_CLASSES)
    assert class_map.n_classes == 2
    assert class_map.class_names == ["background", "road"]
    labels = numpy.array([7, 6, 0, 12, 255], dtype=numpy.uint8)
    assert class_map.apply(labels).tolist() == [1, 0, 0, 0, 255]


def test_classes_by_name_keep_the_order_given():
    class_map = class_map_from_names("vehicle, road", DRIVING_CLASSES)
    assert class_map.class_names == ["background", "vehicle", "road"]
    assert class_map.apply(numpy.array([7, 10, 1], dtype=numpy.uint8)).tolist() == [2, 1, 0]


def test_classes_by_name_with_others_ignored_number_from_zero():
    class_map = class_map_from_names(["road", "sidewalk"], DRIVING_CLASSES, others="ignore")
    assert class_map.class_names == ["road", "sidewalk"]
    assert class_map.n_classes == 2
    assert class_map.apply(numpy.array([7, 8, 1, 255], dtype=numpy.uint8)).tolist() == [0, 1, 255, 255]


def test_classes_by_name_still_reject_values_beyond_the_source_classes():
    class_map = class_map_from_names(["road"], DRIVING_CLASSES)
    with pytest.raises(ValueError, match="value 13 is not in the class map"):
        class_map.apply(numpy.array([7, 13], dtype=numpy.uint8))


@pytest.mark.parametrize("names, others, message", [
    (["motorway"], "background", "'motorway' is neither a number nor a class name"),
    (["road", "road"], "background", "'road' is selected twice"),
    ([], "background", "no classes selected"),
    (["road"], "drop", "others must be 'background' or 'ignore'"),
    (["13"], "background", "class '13' is not one of the 13 source classes"),   # a number past them: no name
])
def test_classes_by_name_errors(names, others, message):
    with pytest.raises(ValueError, match=message):
        class_map_from_names(names, DRIVING_CLASSES, others=others)


def test_names_given_for_a_numbered_map_must_be_one_per_class():
    assert parse_class_map("7:1,*:0", class_names=["rest", "road"]).class_names == ["rest", "road"]
    with pytest.raises(ValueError, match=r"class map '7:1,\*:0' makes 2 classes but 3 names were given"):
        parse_class_map("7:1,*:0", class_names=["rest", "road", "car"])


def test_labels_wider_than_8_bits_are_checked_not_wrapped_around():
    # int32 300 taken as uint8 would be 44, and mapped as if the mask held 44
    class_map = parse_class_map("44:1,*:0")
    assert class_map.apply(numpy.array([44, 3], dtype=numpy.int32)).tolist() == [1, 0]
    for bad, found in ((300, "3..300"), (-1, "-1..3")):
        with pytest.raises(ValueError, match=f"label values must be 0..255, found {found}"):
            class_map.apply(numpy.array([bad, 3], dtype=numpy.int32))


def test_class_map_rejects_targets_beyond_its_classes():
    with pytest.raises(ValueError, match="sends 3 to 5"):
        ClassMap({3: 5}, ["background", "road"], others=0)
